//! The error type of `nucleus-ns`.

use std::path::PathBuf;

/// What went wrong with a namespace operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsError {
    /// A namespace name that is not one of ours.
    #[error("unknown namespace {name:?} (expected pid, mount, network, uts, ipc, cgroup, user, time or a preset: default, all, none)")]
    UnknownNamespace {
        /// The name given.
        name: String,
    },
    /// A hostname that the kernel would refuse or that is not a plain name.
    #[error("invalid hostname {name:?}: use 1 to 64 letters, digits, '-' or '.'")]
    InvalidHostname {
        /// The name given.
        name: String,
    },
    /// `sethostname` failed.
    #[error("failed to set the hostname")]
    SetHostname {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Bringing `lo` up failed.
    #[error("failed to bring the loopback interface up")]
    LoopbackUp {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A namespace file could not be opened.
    #[error("failed to open namespace file {path}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The fork into new namespaces (`clone3`/`clone`) failed.
    #[error("failed to create the namespaces (clone)")]
    Clone {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `setns` failed.
    #[error("failed to join namespace {path}")]
    Setns {
        /// The path given.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

impl NsError {
    /// The errno behind this error, if the kernel gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::SetHostname { source }
            | Self::LoopbackUp { source }
            | Self::Open { source, .. }
            | Self::Setns { source, .. }
            | Self::Clone { source } => source.raw_os_error(),
            _ => None,
        }
    }
}
