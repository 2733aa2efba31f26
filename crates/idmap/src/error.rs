//! The error type of `nucleus-idmap`.

use crate::mapping::IdMapping;
use crate::mode::UsernsMode;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// What went wrong while parsing, resolving or writing uid/gid maps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdmapError {
    /// A mapping that is not `CONTAINER:HOST:SIZE`.
    #[error("invalid id mapping {input:?}: {reason} (expected CONTAINER:HOST:SIZE, e.g. 0:100000:65536)")]
    ParseMapping {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A user namespace mode that is not one of ours.
    #[error("unknown user namespace mode {name:?} (expected auto, rootless, keep-id, root-remapped, explicit or host)")]
    UnknownMode {
        /// The name given.
        name: String,
    },
    /// A uid or gid map breaks one of the kernel's (or our) rules.
    #[error("invalid {map}")]
    InvalidMap {
        /// Which map: `uid_map`, `gid_map` or `id map`.
        map: &'static str,
        /// The rule it breaks.
        #[source]
        problem: MapProblem,
    },
    /// `mode = "explicit"` without both maps.
    #[error("user namespace mode explicit needs a non-empty {missing}")]
    ExplicitMapMissing {
        /// `uid_map` or `gid_map`.
        missing: &'static str,
    },
    /// Maps were given but the mode would ignore them.
    #[error("uid_map/gid_map are only used with user namespace mode explicit, not {mode}")]
    MapsIgnored {
        /// The mode in the policy.
        mode: UsernsMode,
    },
    /// A line of a subuid/subgid file that is not `name-or-uid:start:count`.
    #[error("invalid subordinate id entry at line {line}{}: {reason}", in_path(.path.as_deref()))]
    ParseSubid {
        /// The file, when it was read from one.
        path: Option<PathBuf>,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A subuid/subgid file exists but could not be read.
    #[error("failed to read {path}")]
    ReadSubid {
        /// The file.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A non-root caller asked for a remapped root but owns no subordinate range.
    #[error("user {user} has no entry in {path}: add one (e.g. `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`) or use mode rootless")]
    NoSubidRange {
        /// The caller's name, or uid when it has none.
        user: String,
        /// The file searched.
        path: PathBuf,
    },
    /// `newuidmap` or `newgidmap` is needed but not on `PATH`.
    #[error("{helper} not found on PATH: install the package `uidmap` (it ships newuidmap and newgidmap)")]
    HelperNotFound {
        /// `newuidmap` or `newgidmap`.
        helper: &'static str,
    },
    /// Writing `/proc/PID/{setgroups,uid_map,gid_map}` failed.
    #[error("failed to write {path} for pid {pid}")]
    WriteMap {
        /// The file written.
        path: PathBuf,
        /// The process whose map it is.
        pid: i32,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `newuidmap`/`newgidmap` could not be started.
    #[error("failed to run {helper} for pid {pid}")]
    SpawnHelper {
        /// The helper's path.
        helper: PathBuf,
        /// The process whose map it is.
        pid: i32,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The lock file of a leased range could not be used.
    #[error("cannot lease a host id range in {path}")]
    Lease {
        /// The pool's directory or lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Every range of the pool is held by a live sandbox (or overlaps a
    /// subordinate id entry).
    #[error("all {ranges} host id ranges of {path} are in use by running sandboxes or overlap /etc/subuid or /etc/subgid entries", path = .dir.display())]
    PoolExhausted {
        /// The pool's directory.
        dir: PathBuf,
        /// How many ranges the pool holds.
        ranges: u32,
    },
    /// `newuidmap`/`newgidmap` ran and failed.
    #[error("{} failed for pid {pid} ({status}): {stderr}", .helper.display())]
    HelperFailed {
        /// The helper's path.
        helper: PathBuf,
        /// The process whose map it is.
        pid: i32,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
}

fn in_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" of {}", p.display()))
        .unwrap_or_default()
}

impl IdmapError {
    /// The errno behind this error, if the kernel gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::ReadSubid { source, .. }
            | Self::WriteMap { source, .. }
            | Self::SpawnHelper { source, .. }
            | Self::Lease { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// The rule a uid/gid map breaks; the source of [`IdmapError::InvalidMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MapProblem {
    /// The map has no lines (the kernel refuses an empty write).
    #[error("the map is empty")]
    Empty,
    /// A line with `count` 0.
    #[error("mapping {0} has a size of 0")]
    ZeroCount(IdMapping),
    /// `inside + count` or `outside + count` goes past the last valid id (4294967294).
    #[error("mapping {0} runs past the largest id 4294967294")]
    Overflow(IdMapping),
    /// Two lines map the same id inside the namespace.
    #[error("mappings {0} and {1} overlap inside the namespace")]
    OverlapInside(IdMapping, IdMapping),
    /// Two lines map to the same host id.
    #[error("mappings {0} and {1} overlap on the host")]
    OverlapOutside(IdMapping, IdMapping),
    /// More lines than the kernel accepts.
    #[error("{lines} lines, more than the kernel's limit of {max}")]
    TooManyLines {
        /// Lines given.
        lines: usize,
        /// The limit, [`crate::MAX_MAP_LINES`].
        max: usize,
    },
    /// The map as written would not fit in one page, which the kernel requires.
    #[error("the map is {bytes} bytes, more than the {max} bytes the kernel takes in one write")]
    TooLong {
        /// Size of the text.
        bytes: usize,
        /// The limit, [`crate::MAX_MAP_BYTES`].
        max: usize,
    },
    /// Host uid/gid 0 appears as an outside id without `host_root = "allow"`.
    #[error("mapping {0} maps host id 0 (root); set host_root = \"allow\" if that is intended")]
    HostRoot(IdMapping),
}
