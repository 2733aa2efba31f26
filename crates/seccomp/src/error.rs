//! The error type of `nucleus-seccomp`.

use std::path::PathBuf;

/// What went wrong with a seccomp profile: reading, checking, compiling or applying it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeccompError {
    /// A profile file could not be read.
    #[error("failed to read seccomp profile {path}")]
    ReadProfile {
        /// The path given.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// A pinned hash is not 64 hexadecimal digits.
    #[error("invalid sha256 pin {pin:?}: expected 64 hexadecimal digits (optionally prefixed by \"sha256:\")")]
    InvalidPin {
        /// The pin given.
        pin: String,
    },
    /// The file's SHA-256 differs from the pinned one.
    #[error("seccomp profile {path} does not match its pin: expected sha256 {expected}, file has {actual}")]
    HashMismatch {
        /// The path given.
        path: PathBuf,
        /// The pinned hash (lowercase hex).
        expected: String,
        /// The hash of the file as read (lowercase hex).
        actual: String,
    },
    /// The profile is not well-formed JSON or does not have the expected shape.
    #[error("malformed seccomp profile JSON")]
    ParseJson {
        /// The parser's answer, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// An OCI action name that is not one of `SCMP_ACT_*`.
    #[error("unknown seccomp action {action:?} (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG or SCMP_ACT_NOTIFY)")]
    UnknownAction {
        /// The action given.
        action: String,
    },
    /// An OCI comparison operator that is not one of `SCMP_CMP_*`.
    #[error("unknown argument operator {op:?} (expected SCMP_CMP_EQ, _NE, _LT, _LE, _GT, _GE or _MASKED_EQ)")]
    UnknownOperator {
        /// The operator given.
        op: String,
    },
    /// An architecture name that is not one of `SCMP_ARCH_*`.
    #[error("unknown architecture {arch:?}")]
    UnknownArch {
        /// The architecture given.
        arch: String,
    },
    /// A filter flag this crate does not support.
    #[error("unsupported seccomp flag {flag:?} (only SECCOMP_FILTER_FLAG_LOG is supported)")]
    UnsupportedFlag {
        /// The flag given.
        flag: String,
    },
    /// A field of the OCI profile this crate cannot honour.
    #[error("unsupported seccomp profile field {field:?}")]
    UnsupportedField {
        /// The field's name.
        field: String,
    },
    /// A `minKernel` that is not `MAJOR.MINOR`.
    #[error("invalid minKernel {value:?}: expected MAJOR.MINOR, e.g. \"5.8\"")]
    InvalidMinKernel {
        /// The value given.
        value: String,
    },
    /// A profile that has both `architectures` and `archMap`.
    #[error("seccomp profile has both architectures and archMap: use one")]
    ArchitecturesAndArchMap,
    /// Syscall names that no known architecture has.
    #[error("unknown syscall names: {} (set unknown_syscalls to skip to ignore names this kernel lacks)", .names.join(", "))]
    UnknownSyscalls {
        /// The names, in profile order.
        names: Vec<String>,
    },
    /// A syscall name that is empty or not made of `[a-z0-9_]`.
    #[error("invalid syscall name {name:?} in rule {rule}")]
    InvalidSyscallName {
        /// The index of the rule.
        rule: usize,
        /// The name given.
        name: String,
    },
    /// A rule with no syscall names.
    #[error("rule {rule} names no syscall")]
    EmptyRule {
        /// The index of the rule.
        rule: usize,
    },
    /// An argument index outside 0..=5.
    #[error("argument index {index} out of range 0..=5 in the rule for {syscall}")]
    BadArgIndex {
        /// The first syscall name of the rule.
        syscall: String,
        /// The index given.
        index: u64,
    },
    /// An errno outside 0..=4095.
    #[error("errno {errno} out of range 0..=4095")]
    ErrnoOutOfRange {
        /// The value given.
        errno: u64,
    },
    /// Compiling for an architecture this crate has no syscall table for.
    #[error("cannot compile a seccomp filter for {arch}: only x86_64 and aarch64 are supported")]
    UnsupportedArch {
        /// The architecture asked for.
        arch: String,
    },
    /// The profile lists architectures, and not the one compiled for.
    #[error("seccomp profile does not list architecture {arch}")]
    ArchNotInProfile {
        /// The architecture compiled for.
        arch: String,
    },
    /// The compiled program exceeds the kernel's limit of 4096 instructions.
    #[error("compiled seccomp program has {len} instructions, more than the kernel's 4096")]
    ProgramTooLong {
        /// The program length.
        len: usize,
    },
    /// Serializing a profile failed.
    #[error("failed to serialize seccomp profile")]
    Serialize {
        /// The serializer's answer.
        #[source]
        source: serde_json::Error,
    },
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("failed to install the seccomp filter (no_new_privs must be set first)")]
    Apply {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Obtaining the notification listener from the child failed.
    #[error("failed to take seccomp listener fd {fd} from pid {pid}")]
    TakeListener {
        /// The child's pid.
        pid: i32,
        /// The fd number in the child.
        fd: i32,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// Waiting on the notification listener failed.
    #[error("failed to poll the seccomp listener")]
    PollListener {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `SECCOMP_IOCTL_NOTIF_RECV` failed.
    #[error("failed to receive a seccomp notification")]
    NotifyRecv {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// `SECCOMP_IOCTL_NOTIF_SEND` failed.
    #[error("failed to answer a seccomp notification")]
    NotifySend {
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}

impl SeccompError {
    /// The errno behind this error, if the kernel gave one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::ReadProfile { source, .. }
            | Self::Apply { source }
            | Self::TakeListener { source, .. }
            | Self::PollListener { source }
            | Self::NotifyRecv { source }
            | Self::NotifySend { source } => source.raw_os_error(),
            _ => None,
        }
    }
}
