//! The small types that the error type shares with the rest of the crate:
//! which limit ([`LimitKind`], [`Resource`]) and why one was not applied
//! ([`NotAppliedReason`]). A leaf: it names no other module of the crate,
//! so `error.rs` can name these without a cycle.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which limit, in errors and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LimitKind {
    /// [`Limits::memory`](crate::Limits::memory).
    Memory,
    /// [`Limits::memory_swap`](crate::Limits::memory_swap).
    MemorySwap,
    /// [`Limits::cpus`](crate::Limits::cpus).
    Cpus,
    /// [`Limits::cpu_weight`](crate::Limits::cpu_weight).
    CpuWeight,
    /// [`Limits::pids`](crate::Limits::pids).
    Pids,
    /// [`Limits::io_max`](crate::Limits::io_max).
    IoMax,
}

impl LimitKind {
    /// The flag-style name: `memory`, `memory-swap`, `cpus`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::MemorySwap => "memory-swap",
            Self::Cpus => "cpus",
            Self::CpuWeight => "cpu-weight",
            Self::Pids => "pids",
            Self::IoMax => "io-max",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a limit was not applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NotAppliedReason {
    /// No hierarchy offers the controller (not mounted, not compiled in, or
    /// bound to the other cgroup version).
    ControllerAbsent {
        /// The controller, e.g. `memory`.
        controller: String,
    },
    /// cgroup v2: the controller exists but could not be enabled in the
    /// parent's `cgroup.subtree_control` (not delegated to us, or the parent
    /// holds processes itself).
    ControllerNotEnabled {
        /// The controller.
        controller: String,
        /// The errno of the failed write.
        errno: i32,
    },
    /// The controller is there but this kernel lacks the file (for example
    /// `memory.memsw.limit_in_bytes` without swap accounting).
    FileAbsent {
        /// The missing file.
        path: PathBuf,
    },
    /// The kernel refused the write.
    WriteFailed {
        /// The file.
        path: PathBuf,
        /// The errno.
        errno: i32,
    },
    /// No cgroup could be created where the caller may create them.
    NoCgroup {
        /// The errno of the failed `mkdir`, if one was tried.
        errno: Option<i32>,
    },
}

impl NotAppliedReason {
    /// The errno behind it, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::ControllerNotEnabled { errno, .. } | Self::WriteFailed { errno, .. } => {
                Some(*errno)
            }
            Self::NoCgroup { errno } => *errno,
            _ => None,
        }
    }
}

impl fmt::Display for NotAppliedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let err = |e: i32| std::io::Error::from_raw_os_error(e);
        match self {
            Self::ControllerAbsent { controller } => {
                write!(f, "the {controller} controller is not available to this process")
            }
            // cgroup v2 enables controllers only for the children of a
            // cgroup that holds no process itself (but the root).
            Self::ControllerNotEnabled {
                controller,
                errno: libc::EBUSY,
            } => write!(
                f,
                "cannot enable the {controller} controller for child cgroups: the cgroup holds processes (this one among them), and cgroup v2 gives controllers only to the children of a cgroup that holds none; give a cgroup parent delegated to you that holds no process"
            ),
            Self::ControllerNotEnabled { controller, errno } => write!(
                f,
                "cannot enable the {controller} controller for child cgroups ({}); delegate it, e.g. run under `systemd-run --user --scope -p Delegate=yes`, or give a cgroup parent that is delegated",
                err(*errno)
            ),
            Self::FileAbsent { path } => write!(f, "{} does not exist on this kernel", path.display()),
            Self::WriteFailed { path, errno } => {
                write!(f, "writing {} failed ({})", path.display(), err(*errno))
            }
            Self::NoCgroup { errno: Some(e) } => {
                write!(f, "no cgroup could be created ({})", err(*e))
            }
            Self::NoCgroup { errno: None } => {
                f.write_str("no cgroup hierarchy where this process may create cgroups")
            }
        }
    }
}

macro_rules! resources {
    ($($variant:ident $name:literal $raw:ident $doc:literal,)*) => {
        /// A resource limited by `setrlimit(2)`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Resource {
            $(#[doc = $doc] $variant,)*
        }

        impl Resource {
            /// Every resource, in `RLIMIT_*` order.
            pub const ALL: &'static [Resource] = &[$(Resource::$variant,)*];

            /// The short lowercase name: `core`, `nofile`, ...
            pub fn name(self) -> &'static str {
                match self { $(Resource::$variant => $name,)* }
            }

            /// The `RLIMIT_*` number.
            pub(crate) fn raw(self) -> libc::c_int {
                match self { $(Resource::$variant => libc::$raw as libc::c_int,)* }
            }
        }
    };
}

resources! {
    Cpu "cpu" RLIMIT_CPU "CPU time in seconds (SIGXCPU at soft, SIGKILL at hard).",
    Fsize "fsize" RLIMIT_FSIZE "Largest file the process may create, in bytes.",
    Data "data" RLIMIT_DATA "Data segment size in bytes.",
    Stack "stack" RLIMIT_STACK "Stack size in bytes.",
    Core "core" RLIMIT_CORE "Core dump size in bytes (0: no core dumps).",
    Nproc "nproc" RLIMIT_NPROC "Processes of the real user id (host-wide; prefer the pids cgroup limit).",
    Nofile "nofile" RLIMIT_NOFILE "One more than the highest file descriptor number.",
    Memlock "memlock" RLIMIT_MEMLOCK "Locked memory in bytes.",
    As "as" RLIMIT_AS "Address space in bytes.",
    Locks "locks" RLIMIT_LOCKS "File locks.",
    Sigpending "sigpending" RLIMIT_SIGPENDING "Queued signals.",
    Msgqueue "msgqueue" RLIMIT_MSGQUEUE "POSIX message queue bytes.",
    Nice "nice" RLIMIT_NICE "Ceiling of the nice value (20 - limit).",
    Rtprio "rtprio" RLIMIT_RTPRIO "Ceiling of the real-time priority.",
    Rttime "rttime" RLIMIT_RTTIME "Real-time CPU time in microseconds.",
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
