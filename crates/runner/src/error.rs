//! The error type of `nucleus-runner`.

use std::path::PathBuf;

/// Why a launch could not happen. Each variant names what was asked and
/// what failed; layer errors are kept as the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No command was given.
    #[error("no command given: use nucleus-run [OPTIONS] -- CMD [ARGS...]")]
    NoCommand,
    /// Host networking without consent.
    #[error("host networking refused: --network host needs --allow-host-network")]
    HostNetworkRefused,
    /// Host networking for an untrusted workload.
    #[error("untrusted workloads never get host networking; use --trust-level trusted with --network host --allow-host-network")]
    UntrustedHostNetwork,
    /// gVisor asked for but `runsc` missing.
    #[error("--runtime gvisor needs runsc (apt-get install runsc, or --runsc PATH)")]
    RunscMissing,
    /// An untrusted workload would run without gVisor.
    #[error("refusing to run an untrusted workload natively: {reason}; install runsc, use --trust-level trusted, or pass --allow-degraded-security")]
    DegradedRefused {
        /// Why gVisor is not used.
        reason: &'static str,
    },
    /// The lockdown file has an unexpected format.
    #[error("unexpected kernel lockdown state {text:?}: expected e.g. \"none [integrity] confidentiality\"")]
    LockdownFormat {
        /// What was read.
        text: String,
    },
    /// The lockdown file cannot be read.
    #[error("cannot read the kernel lockdown state from {path}")]
    LockdownRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The kernel's lockdown is weaker than required.
    #[error("kernel lockdown is {active} but {required} is required (--require-kernel-lockdown)")]
    LockdownTooWeak {
        /// What was required.
        required: crate::trust::Lockdown,
        /// What is active.
        active: crate::trust::Lockdown,
    },
    /// `--network none` with the network namespace switched off.
    #[error("--network none needs the network namespace; use --network host --allow-host-network to share the host's")]
    NetworkNamespaceRequired,
    /// Mount options without a mount namespace.
    #[error("filesystem options need the mount namespace")]
    MountNamespaceRequired,
    /// A hostname without a UTS namespace.
    #[error("--hostname needs the uts namespace")]
    UtsNamespaceRequired,
    /// `--userns host` from an unprivileged user.
    #[error("--userns host keeps host ids and needs root; run as root or use --userns rootless")]
    HostUsernsNeedsRoot,
    /// A `--user` that the id map does not contain.
    #[error("user {uid}:{gid} is not mapped in the sandbox's user namespace; add it with --uidmap/--gidmap or --userns keep-id")]
    UserNotMapped {
        /// The uid asked for.
        uid: u32,
        /// The gid asked for.
        gid: u32,
    },
    /// A `--user` that does not parse.
    #[error("invalid --user {text:?}: expected UID[:GID]")]
    InvalidUser {
        /// What was given.
        text: String,
    },
    /// A duration that does not parse.
    #[error("invalid duration {text:?}: expected e.g. 30s, 500ms, 2m")]
    InvalidDuration {
        /// What was given.
        text: String,
    },
    /// A `--ulimit-ns` name this kernel has no `/proc/sys/user` entry for.
    #[error("--ulimit-ns {name}: not a user-namespace limit of this kernel (see /proc/sys/user)")]
    UnknownUsernsLimit {
        /// The name given.
        name: String,
    },
    /// A timeout that could not kill everything.
    #[error("--timeout needs the pid namespace (or a cgroup limit) to kill every process of the sandbox")]
    TimeoutNeedsContainment,
    /// A relative working directory.
    #[error("--workdir {path} must be an absolute path")]
    RelativeWorkdir {
        /// The path given.
        path: PathBuf,
    },
    /// A bad environment variable.
    #[error("invalid environment variable {name:?}: names must be non-empty, without '=' or NUL")]
    InvalidEnv {
        /// The name given.
        name: String,
    },
    /// An argument or variable with a NUL byte.
    #[error("{text:?} contains a NUL byte")]
    NulByte {
        /// The text.
        text: String,
    },
    /// A relative path given on the command line, and no current directory
    /// to resolve it against.
    #[error("cannot resolve {path} against the current directory")]
    RelativePath {
        /// The path as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A config file that cannot be read.
    #[error("cannot read config file {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A config file that does not parse.
    #[error("invalid config file {path}: {message}")]
    ParseConfig {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The process has more than one thread at clone time.
    #[error("the runner has {threads} threads; it must be single-threaded to clone a sandbox")]
    Multithreaded {
        /// How many.
        threads: usize,
    },
    /// `/proc/self/stat` could not be read.
    #[error("cannot count the runner's threads")]
    ThreadCount {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The launch server's socket could not be made.
    #[error("{what} the server socket {}", path.display())]
    ServeSocket {
        /// The socket's path.
        path: PathBuf,
        /// What was tried.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A session cannot be made of this Envelope.
    #[error("a session {why}")]
    SessionUnsupported {
        /// What the Envelope asks that a session cannot give.
        why: &'static str,
    },
    /// A gVisor session needs `nucleus-gvisor-exec`, which is installed
    /// beside `nucleus-run`, and it is not there.
    #[error(
        "a session under gVisor needs {}: install it beside nucleus-run (cargo install \
         installs both), or pass --runtime native",
        path.display()
    )]
    GvisorHelperMissing {
        /// Where it was looked for.
        path: std::path::PathBuf,
    },
    /// A spare (a sandbox a server builds ahead) cannot be made of this
    /// Envelope; the server runs its requests cold.
    #[error("a spare {why}")]
    SpareUnsupported {
        /// What the Envelope asks that a spare cannot give.
        why: &'static str,
    },
    /// A session's namespaces or cgroup could not be held or joined.
    #[error("cannot {what} the session's {ns}")]
    SessionJoin {
        /// Open or join.
        what: &'static str,
        /// The namespace (or `cgroup`).
        ns: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pipe could not be created or used.
    #[error("cannot set up the sandbox channel")]
    Pipe {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox's own terminal could not be set up or relayed.
    #[error("cannot give the sandbox a terminal of its own")]
    Terminal {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signalfd could not be created.
    #[error("cannot watch signals")]
    Signalfd {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The runner could not become the subreaper of a sandbox without a
    /// PID namespace, so it could not end what the workload leaves.
    #[error("cannot collect the processes of a sandbox without a PID namespace (PR_SET_CHILD_SUBREAPER)")]
    Subreaper {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `clone3` failed.
    #[error("cannot create the sandbox process (clone3); check that user namespaces are allowed (nucleus-run doctor)")]
    Clone {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Waiting for the sandbox failed.
    #[error("cannot wait for the sandbox")]
    Wait {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A namespace option is wrong.
    #[error(transparent)]
    Ns(#[from] nucleus_ns::NsError),
    /// The id maps could not be resolved or written.
    #[error("user namespace")]
    Idmap(#[source] Box<nucleus_idmap::IdmapError>),
    /// The capability policy is wrong.
    #[error("capabilities")]
    Caps(#[source] Box<nucleus_caps::CapsError>),
    /// A WASI flag (`--dir`, `--wasm-fuel`, ...) without a module to apply it to.
    #[error("{flag} needs --wasm MODULE (or a [wasm] section in the config)")]
    WasmFlagWithoutModule {
        /// The flag.
        flag: &'static str,
    },
    /// A hash pin without the file it pins.
    #[error("{what} needs the policy file it pins")]
    PinWithoutFile {
        /// The flag.
        what: &'static str,
    },
    /// Landlock settings that contradict each other.
    #[error("conflicting landlock settings: {what}")]
    LandlockConflict {
        /// The combination.
        what: &'static str,
    },
    /// The Landlock policy is wrong or cannot be enforced here.
    #[error(transparent)]
    Landlock(Box<nucleus_landlock_policy::LandlockError>),
    /// The seccomp profile is wrong or cannot be compiled.
    #[error("seccomp")]
    Seccomp(#[source] Box<nucleus_seccomp::SeccompError>),
    /// A limit is wrong or could not be set.
    #[error("limits")]
    Cgroup(#[source] Box<nucleus_cgroup::CgroupError>),
    /// `seccomp record` under gVisor.
    #[error("seccomp record runs natively: add --trust-level trusted or --runtime native --allow-degraded-security")]
    RecordNeedsNative,
    /// seccomp settings that contradict each other.
    #[error("conflicting seccomp settings: {what}")]
    SeccompConflict {
        /// The combination.
        what: &'static str,
    },
    /// A seccomp profile that would break the sandbox's init.
    #[error("the seccomp profile denies syscalls the sandbox init needs to start, reap and report the workload: {syscalls}")]
    SeccompDeniesInit {
        /// The denied syscalls.
        syscalls: String,
    },
    /// The init ended without reporting the workload's status.
    #[error("the sandbox init ended without reporting the workload's status")]
    NoStatus,
    /// Recording ended before the init reported its seccomp listener.
    #[error("seccomp record: the sandbox ended before recording started")]
    RecordIncomplete,
    /// An output file could not be written.
    #[error("cannot write {path}")]
    WriteOutput {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Something asked for that the gVisor runtime cannot enforce.
    #[error("not possible under gVisor: {what}")]
    NotUnderGvisor {
        /// What.
        what: &'static str,
    },
    /// The sandbox's user namespace could not be opened to idmap binds.
    #[error("idmapped binds: cannot open the sandbox's user namespace")]
    IdmapUserns {
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The directory of gVisor runs cannot be made or used.
    #[error("gvisor: run directory {path}")]
    GvisorWorkspace {
        /// The directory.
        path: std::path::PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// gVisor (runsc) failed.
    #[error("gvisor")]
    Gvisor(#[source] Box<nucleus_gvisor::GvisorError>),
    /// The WASI module cannot be prepared.
    #[error("wasm")]
    Wasm(#[source] Box<nucleus_wasm::WasmError>),
    /// The module's compile was stopped by a limit of the run (memory or
    /// timeout): the run's outcome, as the sandbox's would have been
    /// (`killed_by`, exit code); [`crate::launch`] returns it as the result.
    #[error("{}", .0.error.as_deref().unwrap_or("wasm: the compile was stopped"))]
    WasmCompileStopped(Box<crate::Outcome>),
    /// A bind source lies inside a directory of the runner's own state.
    #[error("refusing to bind {bind}: it is inside {state}, the runner's own state, which no sandbox may see")]
    BindInsideState {
        /// The bind's source, resolved.
        bind: PathBuf,
        /// The state directory.
        state: PathBuf,
    },
    /// The compile helper could not be moved into its cgroup.
    #[error("wasm: the compile helper could not be admitted to its cgroup")]
    WasmCompileAdmit {
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The filesystem view is wrong.
    #[error("mount")]
    Rootfs(#[source] Box<nucleus_rootfs::RootfsError>),
}

/// Layer errors are boxed: they are large, and `RunError` travels by value.
macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),* $(,)?) => {$(
        impl From<$ty> for RunError {
            fn from(err: $ty) -> Self {
                RunError::$variant(Box::new(err))
            }
        }
    )*};
}

boxed_from! {
    Idmap: nucleus_idmap::IdmapError,
    Caps: nucleus_caps::CapsError,
    Rootfs: nucleus_rootfs::RootfsError,
    Landlock: nucleus_landlock_policy::LandlockError,
    Seccomp: nucleus_seccomp::SeccompError,
    Cgroup: nucleus_cgroup::CgroupError,
    Gvisor: nucleus_gvisor::GvisorError,
    Wasm: nucleus_wasm::WasmError,
}

/// An errno as the lowercase sentence users see: `no such file or directory`.
pub(crate) fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    text.split(" (os error")
        .next()
        .unwrap_or(&text)
        .to_lowercase()
}

impl RunError {
    /// The error and its causes in one line, `a: b: c`, OS errors written
    /// as the rest of the messages (lowercase, without "(os error N)").
    ///
    /// ```
    /// let err = nucleus_runner::RunError::NoCommand;
    /// assert!(!err.chain().is_empty());
    /// ```
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&plain(&cause.to_string()));
            source = cause.source();
        }
        if let Some(hint) = self.flag_hint() {
            text.push_str(" (");
            text.push_str(&hint);
            text.push(')');
        }
        text
    }

    /// The command-line flag that answers a layer's error, for the end of
    /// [`chain`](Self::chain). Layer crates describe a problem in their own
    /// terms and never name a flag of `nucleus-run`; the runner owns the
    /// flags, so it names them here.
    fn flag_hint(&self) -> Option<String> {
        use nucleus_cgroup::CgroupError;
        use nucleus_rootfs::RootfsError;
        match self {
            Self::Cgroup(err) => match &**err {
                CgroupError::LimitNotApplied { .. } => {
                    Some("pass --best-effort-limits to run without it".to_owned())
                }
                CgroupError::CpusAboveOnline { online, .. } => {
                    Some(format!("lower --cpus to at most {online}"))
                }
                _ => None,
            },
            Self::Rootfs(err) => match &**err {
                RootfsError::IdmapUnsupported { .. } => {
                    Some("pass --bind-mode plain to bind without idmapping".to_owned())
                }
                RootfsError::SymlinkSource { .. } => {
                    Some("pass --bind-follow-symlinks to follow it".to_owned())
                }
                RootfsError::MaskedSymlink { path } => {
                    Some(format!("pass --unmask {} to show it", path.display()))
                }
                _ => None,
            },
            Self::Gvisor(err) => match &**err {
                nucleus_gvisor::GvisorError::NotFound { .. } => {
                    Some("pass --runsc PATH to name it".to_owned())
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// An OS error as the rest of our messages read: lowercase, no "(os error N)".
fn plain(cause: &str) -> String {
    let mut text = cause.to_owned();
    while let Some(start) = text.find(" (os error ") {
        let Some(len) = text[start..].find(')') else {
            break;
        };
        text.replace_range(start..start + len + 1, "");
    }
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text,
    }
}
