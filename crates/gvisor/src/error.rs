//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

// Only the leaf data modules: nothing the error names may name the error.
use crate::outcome::RunOutcome;
use crate::platform::Platform;

/// Everything that can fail in `nucleus-gvisor`: finding and identifying
/// `runsc`, choosing a platform, translating a [`BundleSpec`](crate::BundleSpec)
/// into an OCI bundle, running it and cleaning up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GvisorError {
    /// No `runsc` on `PATH` and none was given.
    #[error("runsc not found on PATH ({searched}); install gVisor or give the path of runsc")]
    NotFound {
        /// The `PATH` that was searched.
        searched: String,
    },
    /// The given `runsc` path does not exist or is not an executable file.
    #[error("{path} is not an executable file")]
    NotExecutable {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be used (absent, a directory, no execute bit).
        #[source]
        source: io::Error,
    },
    /// Starting or waiting for a `runsc` helper command failed.
    #[error("failed to run `{path} {command}`")]
    Spawn {
        /// The `runsc` binary.
        path: PathBuf,
        /// The subcommand and flags.
        command: String,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A `runsc` helper command did not answer in time.
    #[error("`{path} {command}` did not finish within {seconds}s")]
    HelperTimeout {
        /// The `runsc` binary.
        path: PathBuf,
        /// The subcommand.
        command: String,
        /// The limit.
        seconds: u64,
    },
    /// The binary answered `--version` with something that is not runsc's banner.
    #[error(
        "{path} is not runsc: `--version` printed {output:?} (expected \"runsc version ...\")"
    )]
    NotRunsc {
        /// The binary that was asked.
        path: PathBuf,
        /// The start of what it printed.
        output: String,
    },
    /// A platform name that this crate does not know.
    #[error("unknown gVisor platform {name:?} (use ptrace, kvm or systrap)")]
    UnknownPlatform {
        /// What was given.
        name: String,
    },
    /// The installed `runsc` does not know the asked platform.
    #[error("runsc {version} does not support platform {platform} (it knows: {known})")]
    PlatformUnsupported {
        /// The platform asked.
        platform: Platform,
        /// The release of `runsc`.
        version: String,
        /// The platforms it does know, comma separated.
        known: String,
    },
    /// `kvm` was asked but the machine has no usable KVM device.
    #[error("platform kvm needs {device}, which is not available")]
    KvmUnavailable {
        /// The device looked for.
        device: PathBuf,
        /// Why it is not usable.
        #[source]
        source: io::Error,
    },
    /// No platform was asked and `runsc` knows none that this crate picks by itself.
    #[error(
        "runsc {version} lists no platform this crate can use without asking (it knows: {known})"
    )]
    NoDefaultPlatform {
        /// The release of `runsc`.
        version: String,
        /// The platforms it knows, comma separated.
        known: String,
    },
    /// The spec needs a `runsc` feature this release lacks.
    #[error("runsc {version} lacks --{flag}, needed for {needed_for}")]
    FeatureUnsupported {
        /// The missing flag.
        flag: &'static str,
        /// What asked for it.
        needed_for: &'static str,
        /// The release of `runsc`.
        version: String,
    },
    /// The bundle description is invalid.
    #[error("invalid bundle spec: {field}: {reason}")]
    InvalidSpec {
        /// The field at fault.
        field: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// The `seccomp` value is not an OCI `linux.seccomp` object.
    #[error("invalid bundle spec: seccomp is not an OCI linux.seccomp object")]
    InvalidSeccomp {
        /// What the OCI types said.
        #[source]
        source: serde_json::Error,
    },
    /// Building an OCI type failed.
    #[error("failed to build the OCI {what}")]
    Oci {
        /// Which part of the config.
        what: &'static str,
        /// What the OCI types said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing the OCI bundle (directories, symlinks, `config.json`) failed.
    #[error("failed to write bundle file {path}")]
    WriteBundle {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The per-run directory could not be removed after a prepared run.
    #[error("failed to remove the run directory {path}")]
    RemoveWorkspace {
        /// What could not be removed.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// Serializing `config.json` failed.
    #[error("failed to serialize config.json")]
    SerializeConfig {
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// `runsc run` itself failed before or while starting the workload.
    #[error("runsc failed to run container {id} (exit code {code}): {message}")]
    RunscFailed {
        /// The container id.
        id: String,
        /// The exit code of `runsc run`.
        code: i32,
        /// runsc's own error message (from its log).
        message: String,
    },
    /// The container ran, but its container, bundle or state directory could
    /// not be removed afterwards. The outcome of the run is kept.
    #[error("container {id} ran but cleaning up {path} failed")]
    Cleanup {
        /// The container id.
        id: String,
        /// What could not be removed (a directory, or the container id).
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: io::Error,
        /// The result of the run itself.
        outcome: Box<RunOutcome>,
    },
}

impl GvisorError {
    /// The errno behind this error, where there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            GvisorError::NotExecutable { source, .. }
            | GvisorError::Spawn { source, .. }
            | GvisorError::KvmUnavailable { source, .. }
            | GvisorError::WriteBundle { source, .. }
            | GvisorError::RemoveWorkspace { source, .. }
            | GvisorError::Cleanup { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
