//! The ordered steps of a launch, named so messages and code agree.

/// One step of the launch sequence. The order of the variants is the order
/// of the sequence; a failure names its stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Stage {
    /// The child waits until the parent wrote its id maps.
    Sync = 1,
    /// The filesystem view is built and entered.
    Mount,
    /// The working directory is entered.
    Workdir,
    /// The hostname is set.
    Hostname,
    /// The loopback interface is brought up.
    Loopback,
    /// Resource limits (rlimits) are set.
    Rlimits,
    /// Stray file descriptors are closed and a new session started.
    Session,
    /// The workload's uid and gid are taken.
    User,
    /// Capabilities are dropped and verified.
    Capabilities,
    /// `no_new_privs` is set.
    NoNewPrivs,
    /// The Landlock domain is entered.
    Landlock,
    /// The seccomp filter is installed.
    Seccomp,
    /// The init forks the workload.
    Fork,
    /// The workload program is executed.
    Exec,
    /// The wasm host sets up the module's WASI context (its preopens).
    Wasm,
    /// The PID namespace's `vm.memfd_noexec` is set.
    MemfdNoexec,
    /// The user namespace's limits (`/proc/sys/user`) are set.
    UsernsLimits,
}

impl Stage {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Mount => "mount",
            Self::Workdir => "workdir",
            Self::Hostname => "hostname",
            Self::Loopback => "loopback",
            Self::Rlimits => "rlimits",
            Self::Session => "session",
            Self::User => "user",
            Self::Capabilities => "capabilities",
            Self::NoNewPrivs => "no_new_privs",
            Self::Landlock => "landlock",
            Self::Seccomp => "seccomp",
            Self::Fork => "fork",
            Self::Exec => "exec",
            Self::Wasm => "wasm",
            Self::MemfdNoexec => "memfd_noexec",
            Self::UsernsLimits => "userns_limits",
        }
    }

    /// The stage with this wire number.
    pub(crate) fn from_u32(n: u32) -> Option<Stage> {
        const ALL: [Stage; 17] = [
            Stage::Sync,
            Stage::Mount,
            Stage::Workdir,
            Stage::Hostname,
            Stage::Loopback,
            Stage::Rlimits,
            Stage::Session,
            Stage::User,
            Stage::Capabilities,
            Stage::NoNewPrivs,
            Stage::Landlock,
            Stage::Seccomp,
            Stage::Fork,
            Stage::Exec,
            Stage::Wasm,
            Stage::MemfdNoexec,
            Stage::UsernsLimits,
        ];
        ALL.into_iter().find(|s| *s as u32 == n)
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
