//! The one error type of this crate. It speaks of limits, not of the
//! command line that may have asked for them: the runner adds the flags.

use std::io;
use std::path::PathBuf;

use crate::types::{LimitKind, NotAppliedReason, Resource};

/// Everything that can fail in `nucleus-cgroup`: parsing limits, creating and
/// filling the cgroup, killing and removing it, and applying rlimits.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    /// A size such as `512M` could not be parsed.
    #[error("invalid size {input:?}: {reason} (use a positive number of bytes with an optional K, M, G or T suffix, e.g. 512M)")]
    InvalidSize {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A CPU count such as `1.5` could not be parsed.
    #[error("invalid cpu count {input:?}: {reason}")]
    InvalidCpus {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More CPUs were asked than the machine has online.
    #[error("requested {requested} cpus, more than the {online} online on this machine")]
    CpusAboveOnline {
        /// CPUs asked.
        requested: f64,
        /// CPUs online.
        online: usize,
    },
    /// A duration such as `30s` could not be parsed.
    #[error(
        "invalid duration {input:?}: {reason} (use a positive number with ms, s, m or h, e.g. 30s)"
    )]
    InvalidDuration {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A plain count such as `256` could not be parsed.
    #[error("invalid count {input:?}: {reason}")]
    InvalidCount {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An `io.max` entry could not be parsed or is out of range.
    #[error("invalid io limit {input:?}: {reason} (use MAJ:MIN rbps=N wbps=N riops=N wiops=N)")]
    InvalidIoMax {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field of [`Limits`](crate::Limits) is out of range.
    #[error("invalid {limit} limit: {reason}")]
    InvalidLimit {
        /// Which limit.
        limit: LimitKind,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A cgroup path given to override discovery is not acceptable.
    #[error("invalid cgroup parent {path}: {reason}")]
    InvalidCgroupParent {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An rlimit name is not one this crate knows.
    #[error("unknown rlimit {name:?} (known: core, cpu, data, fsize, nofile, nproc, stack, as, memlock, msgqueue, nice, rtprio, rttime, sigpending, locks)")]
    UnknownRlimit {
        /// The name given.
        name: String,
    },
    /// An rlimit such as `nofile=1024:4096` (`NAME=SOFT[:HARD]`) could not be parsed.
    #[error(
        "invalid rlimit {input:?}: {reason} (use NAME=SOFT[:HARD], values a number or unlimited)"
    )]
    InvalidRlimit {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An rlimit's soft value is above its hard value.
    #[error("rlimit {resource}: soft limit {soft} is above hard limit {hard}")]
    RlimitSoftAboveHard {
        /// Which resource.
        resource: Resource,
        /// Soft value.
        soft: u64,
        /// Hard value.
        hard: u64,
    },
    /// The same rlimit resource is listed twice.
    #[error("rlimit {resource} is listed more than once")]
    DuplicateRlimit {
        /// Which resource.
        resource: Resource,
    },
    /// `getrlimit` failed.
    #[error("failed to read rlimit {resource}")]
    Getrlimit {
        /// Which resource.
        resource: Resource,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// `setrlimit` failed.
    #[error("failed to set rlimit {resource}")]
    Setrlimit {
        /// Which resource.
        resource: Resource,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// No cgroup hierarchy was found where one was looked for.
    #[error("no cgroup hierarchy found under {sys_root} (is cgroupfs mounted?)")]
    NoHierarchy {
        /// The cgroup mount root searched.
        sys_root: PathBuf,
    },
    /// A limit asked in [`LimitMode::Required`](crate::LimitMode::Required)
    /// could not be set; [`LimitMode::BestEffort`](crate::LimitMode::BestEffort)
    /// would run without it and list it in the report.
    #[error("cannot apply the required {limit} limit: {reason}")]
    LimitNotApplied {
        /// Which limit.
        limit: LimitKind,
        /// Why not.
        reason: NotAppliedReason,
    },
    /// A device rule is malformed.
    #[error("invalid device rule {rule:?}: {reason}")]
    InvalidDeviceRule {
        /// What was given.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Device rules were asked where the cgroup has no v2 directory to
    /// attach their program to.
    #[error("device rules need a cgroup v2 directory (or the v1 devices controller)")]
    NoDeviceCgroup,
    /// Loading or attaching the v2 device program failed.
    #[error("cannot {op} the cgroup v2 device program (it needs CAP_BPF or CAP_SYS_ADMIN)")]
    DeviceProgram {
        /// `load` or `attach`.
        op: &'static str,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Pausing needs a freezer (v1 `freezer` hierarchy or v2 `cgroup.freeze`).
    #[error("the cgroup has no freezer (no v1 freezer hierarchy, no cgroup.freeze)")]
    NoFreezer,
    /// Reading a cgroup or proc file failed.
    #[error("failed to read {path}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("failed to write {value:?} to {path}")]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Creating the sandbox's cgroup directory failed.
    #[error("failed to create cgroup {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Opening the v2 cgroup directory for `CLONE_INTO_CGROUP` failed.
    #[error("failed to open cgroup directory {path}")]
    OpenDir {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Moving a process into the cgroup failed.
    #[error("failed to move pid {pid} into {path}")]
    Attach {
        /// The process.
        pid: i32,
        /// The `cgroup.procs` file written.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Sending SIGKILL to a process of the sandbox failed.
    #[error("failed to kill pid {pid} of cgroup {path}")]
    Kill {
        /// The process.
        pid: i32,
        /// The cgroup it was listed in.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// Processes were still in the cgroup after every kill attempt.
    #[error("{remaining} process(es) still in cgroup {path} after killing for {waited_ms} ms")]
    KillTimeout {
        /// The cgroup.
        path: PathBuf,
        /// How many are left.
        remaining: usize,
        /// How long we tried.
        waited_ms: u64,
    },
    /// The caller's own process is listed in the sandbox's cgroup; refusing to kill it.
    #[error("the calling process {pid} is inside the sandbox cgroup {path}; refusing to kill it")]
    SelfInCgroup {
        /// Our pid.
        pid: i32,
        /// The cgroup.
        path: PathBuf,
    },
    /// Removing the cgroup directory failed.
    #[error("failed to remove cgroup {path}")]
    RemoveDir {
        /// The directory.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    /// The errno behind this error, when the kernel gave one.
    ///
    /// The runner uses it to send a failure from the sandbox child to the parent.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Getrlimit { source, .. }
            | Self::Setrlimit { source, .. }
            | Self::ReadFile { source, .. }
            | Self::WriteFile { source, .. }
            | Self::CreateDir { source, .. }
            | Self::OpenDir { source, .. }
            | Self::Attach { source, .. }
            | Self::Kill { source, .. }
            | Self::RemoveDir { source, .. } => source.raw_os_error(),
            Self::LimitNotApplied { reason, .. } => reason.errno(),
            _ => None,
        }
    }
}
