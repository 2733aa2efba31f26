//! The result of a run, as Rust data and as the `--json` object.

use crate::exit;
use serde::Serialize;
use std::time::Duration;

/// Why the sandbox was killed by nucleus (or by the kernel for a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KilledBy {
    /// The wall-clock timeout ran out.
    Timeout,
    /// The memory limit was hit and the kernel's OOM killer struck.
    Memory,
    /// The pids limit was hit.
    Pids,
    /// A signal sent to the runner from outside, forwarded to the
    /// workload, killed it.
    Signal,
}

/// The version of the `--json` result's contract, carried as its first
/// field, `schema_version` ([`Outcome::schema_version`]). The result is
/// described by `schema/result.schema.json` in the repository.
///
/// It is bumped on an incompatible change only: a field removed or renamed,
/// or a field's type or meaning changed. A field added, or a new value of an
/// enumeration (`killed_by`, `landlock.status`, ...), keeps the version;
/// consumers should ignore fields they do not know.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// What happened to one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Outcome {
    /// The version of the result's contract, always
    /// [`RESULT_SCHEMA_VERSION`]: the first field of the `--json` object, so
    /// that a consumer can tell which contract it reads (also when it
    /// serializes an `Outcome` of its own).
    pub schema_version: u32,
    /// The exit code `nucleus-run` exits with (see [`crate::exit`]).
    pub exit_code: i32,
    /// The signal that killed the workload, if one did.
    pub signal: Option<i32>,
    /// Why nucleus (or a limit) ended the sandbox.
    pub killed_by: Option<KilledBy>,
    /// The setup or exec failure, as a sentence naming the step.
    pub error: Option<String>,
    /// Wall-clock time from clone to the init's exit, in milliseconds.
    pub wall_time_ms: f64,
    /// User CPU time of every process of the sandbox, in milliseconds.
    pub user_cpu_ms: f64,
    /// System CPU time of every process of the sandbox, in milliseconds.
    pub system_cpu_ms: f64,
    /// The largest resident set of any process of the sandbox, in bytes.
    pub peak_memory_bytes: u64,
    /// What the layers enforced.
    pub enforced: Enforced,
    /// For `--wasm` runs: the module, the cache, the trap and the fuel.
    pub wasm: Option<WasmReport>,
    /// What this run removed that an earlier, killed run left behind (a
    /// runsc run directory, an empty cgroup).
    pub cleaned: Vec<std::path::PathBuf>,
    /// With `--capture`: the workload's stdout and stderr (`null` without).
    pub captured: Option<Captured>,
    /// How the workload got a terminal (`null`: none of its stdio was one).
    pub terminal: Option<Terminal>,
}

/// The workload's terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Terminal {
    /// A pseudo-terminal of its own in place of the caller's terminal,
    /// relayed to it (stdin too when stdin was the terminal); the caller's
    /// terminal settings were restored after the run.
    Relayed,
}

/// The workload's output, kept for the result (`--capture`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Captured {
    /// stdout, up to the limit (invalid UTF-8 replaced by U+FFFD).
    pub stdout: String,
    /// stderr, up to the limit.
    pub stderr: String,
    /// How many bytes the workload wrote to stdout in all.
    pub stdout_bytes: u64,
    /// How many bytes to stderr.
    pub stderr_bytes: u64,
    /// Whether either stream was cut at the limit.
    pub truncated: bool,
}

impl Captured {
    pub(crate) fn new(out: crate::relay::Kept, err: crate::relay::Kept) -> Captured {
        let truncated = out.total > out.bytes.len() as u64 || err.total > err.bytes.len() as u64;
        Captured {
            stdout: String::from_utf8_lossy(&out.bytes).into_owned(),
            stderr: String::from_utf8_lossy(&err.bytes).into_owned(),
            stdout_bytes: out.total,
            stderr_bytes: err.total,
            truncated,
        }
    }
}

/// The WASI part of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WasmReport {
    /// SHA-256 of the module file.
    pub module_sha256: String,
    /// What the compiled-module cache did (`hit`, `stored`, ...).
    pub cache: nucleus_wasm::CacheStatus,
    /// Why the cache was skipped or an entry replaced, when it was.
    pub cache_note: Option<String>,
    /// Time spent compiling (0 on a cache hit), in milliseconds: in a helper
    /// process under the run's limits, counted against `--timeout`.
    pub compile_ms: f64,
    /// Peak memory of the compile, in bytes (0 on a cache hit): the compile
    /// helper's peak resident set (`ru_maxrss`, which includes the pages it
    /// shares with the runner it was forked from).
    pub compile_peak_memory_bytes: u64,
    /// The trap that stopped the module, if one did.
    pub trap: Option<nucleus_wasm::TrapKind>,
    /// Whether a `memory.grow` (or table grow) was refused by
    /// `--wasm-max-memory`: the guest saw -1, or could not start.
    pub memory_limit_hit: bool,
    /// Fuel consumed, when `--wasm-fuel` metered it.
    pub fuel_consumed: Option<u64>,
}

impl Outcome {
    /// `usage`: the sandbox's own (from waiting for its init); without it,
    /// every reaped child of this process counts.
    pub(crate) fn new(wall: Duration, enforced: Enforced, usage: Option<&libc::rusage>) -> Outcome {
        // SAFETY: rusage is plain data, filled by getrusage.
        let mut children: libc::rusage = unsafe { std::mem::zeroed() };
        if usage.is_none() {
            // SAFETY: `children` is a live rusage; RUSAGE_CHILDREN covers every reaped descendant.
            unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut children) };
        }
        let usage = usage.unwrap_or(&children);
        let ms = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
        Outcome {
            schema_version: RESULT_SCHEMA_VERSION,
            exit_code: 0,
            signal: None,
            killed_by: None,
            error: None,
            wall_time_ms: wall.as_secs_f64() * 1000.0,
            user_cpu_ms: ms(usage.ru_utime),
            system_cpu_ms: ms(usage.ru_stime),
            peak_memory_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
            enforced,
            wasm: None,
            cleaned: Vec::new(),
            captured: None,
            terminal: None,
        }
    }

    pub(crate) fn set_status(&mut self, status: i32) {
        self.exit_code = exit::from_wait_status(status);
        if libc::WIFSIGNALED(status) {
            self.signal = Some(libc::WTERMSIG(status));
        }
    }
}

/// What the sandbox layers enforced for this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Enforced {
    /// The namespaces created.
    pub namespaces: Vec<String>,
    /// The user-namespace mode (`host` when none).
    pub userns: String,
    /// The uid map lines (`inside:outside:count`).
    pub uid_map: Vec<String>,
    /// The gid map lines.
    pub gid_map: Vec<String>,
    /// The workload's uid and gid inside.
    pub uid: u32,
    /// The workload's gid inside.
    pub gid: u32,
    /// The capabilities kept (empty: all dropped).
    pub capabilities: Vec<String>,
    /// Whether `no_new_privs` was set (always, for a started workload).
    pub no_new_privs: bool,
    /// Whether the root of the view is read-only.
    pub readonly_root: bool,
    /// What Landlock enforced.
    pub landlock: LandlockEnforced,
    /// The seccomp filter installed (`null`: none, `--seccomp off`).
    pub seccomp: Option<nucleus_seccomp::SeccompReport>,
    /// The cgroup limits applied and the usage read (`null`: no limits asked).
    pub limits: Option<LimitsEnforced>,
    /// The rlimits the workload got.
    pub rlimits: Vec<nucleus_cgroup::rlimit::Rlimit>,
    /// The runtime: `native`, `gvisor`, or `native-degraded` (an untrusted
    /// workload run natively with `--allow-degraded-security`).
    pub runtime: crate::trust::Decision,
    /// The host paths hidden behind empty read-only files or directories.
    pub masked_paths: Vec<std::path::PathBuf>,
    /// The user namespace's limits set (`/proc/sys/user`; empty without
    /// a user namespace of ours).
    pub userns_limits: std::collections::BTreeMap<String, u64>,
    /// How fileless execution (a program written to a memfd) is closed:
    /// `sysctl`, `seccomp` or `off`.
    pub memfd_noexec: MemfdNoexec,
    /// Under gVisor: how runsc itself was contained (`null` natively).
    pub gvisor: Option<GvisorEnforced>,
}

impl Enforced {
    /// The report of a sandbox that was never started (its preparation was
    /// stopped by a limit, or the command was not found): nothing enforced.
    pub(crate) fn not_started(runtime: crate::trust::Decision) -> Enforced {
        Enforced {
            namespaces: Vec::new(),
            userns: String::new(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            uid: 0,
            gid: 0,
            capabilities: Vec::new(),
            no_new_privs: false,
            readonly_root: false,
            landlock: LandlockEnforced::off(),
            seccomp: None,
            limits: None,
            rlimits: Vec::new(),
            runtime,
            masked_paths: Vec::new(),
            userns_limits: Default::default(),
            memfd_noexec: MemfdNoexec::Off,
            gvisor: None,
        }
    }
}

/// How the gVisor runtime ran, for the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GvisorEnforced {
    /// runsc's version.
    pub version: String,
    /// The platform used (`ptrace`, ...).
    pub platform: String,
    /// runsc, its gofer and sandbox ran in a user namespace of their own
    /// with the same map as the native envelope (`uid_map`): no host
    /// privilege, host files reached with the mapped ids' rights.
    pub host_userns: bool,
    /// `--rootless` was passed (the map holds a single id).
    pub rootless_flag: bool,
    /// The sandbox's cgroup is the runner's own (`--ignore-cgroups`).
    pub ignore_cgroups: bool,
    /// The seccomp profile is enforced by the sentry (`--oci-seccomp`).
    pub oci_seccomp: bool,
    /// Every writable mount is `noexec` (but `--bind-exec` ones) and every
    /// bind `nosuid,nodev`, as Landlock and the mount flags make them natively.
    pub writable_noexec: bool,
    /// `private-namespace`: the sentry's sockets live in the envelope's own
    /// network namespace (only `lo`), where the host kernel checks
    /// privileged ports and raw sockets as natively; `host`: the host's.
    pub network: &'static str,
}

/// The cgroup part of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimitsEnforced {
    /// Which limits were applied, which not (best effort) and why.
    pub applied: nucleus_cgroup::AppliedLimits,
    /// What the sandbox used, read from the cgroup.
    pub usage: nucleus_cgroup::Usage,
    /// The sandbox started inside its (v2) cgroup (`clone3` with
    /// `CLONE_INTO_CGROUP`) rather than being moved in after clone.
    pub clone_into_cgroup: bool,
}

/// Landlock's part of the result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LandlockEnforced {
    /// The kernel's Landlock ABI (0 when Landlock is off or absent).
    pub abi: u8,
    /// Whether the policy was enforced in full.
    pub status: LandlockStatus,
    /// Rights and scopes dropped because the kernel lacks them.
    pub dropped: Vec<String>,
    /// How many rule paths did not exist in the view and were skipped
    /// (optional rules, or any rule in best-effort mode).
    pub skipped_paths: u32,
}

impl LandlockEnforced {
    pub(crate) fn off() -> Self {
        Self {
            abi: 0,
            status: LandlockStatus::Off,
            dropped: Vec::new(),
            skipped_paths: 0,
        }
    }
}

/// The Landlock status of a run (its wire number crosses the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum LandlockStatus {
    /// Every right of the policy is enforced.
    FullyEnforced,
    /// Some rights were dropped (best-effort), see `dropped`.
    PartiallyEnforced,
    /// The kernel enforced nothing (best-effort on a kernel without Landlock).
    NotEnforced,
    /// The sandbox ended before it reported (a setup failure).
    NotApplied,
    /// Under gVisor: the sentry is the workload's kernel and serves only
    /// the bundle's view, through a gofer without host privilege.
    ReplacedByGvisor,
    /// Switched off with `--landlock off`.
    Off,
}

impl LandlockStatus {
    /// The status with this wire number.
    pub(crate) fn from_u32(n: u32) -> Option<LandlockStatus> {
        [
            Self::FullyEnforced,
            Self::PartiallyEnforced,
            Self::NotEnforced,
            Self::NotApplied,
            Self::ReplacedByGvisor,
            Self::Off,
        ]
        .into_iter()
        .find(|s| *s as u32 == n)
    }
}

/// How a program written to a `memfd` is kept from executing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemfdNoexec {
    /// The PID namespace's `vm.memfd_noexec = 2`, set by the init while it
    /// still has the host root's id: every memfd is sealed non-executable.
    Sysctl,
    /// The seccomp filter answers `ENOSYS` to `memfd_create` without
    /// `MFD_NOEXEC_SEAL` (rootless, or a kernel without the sysctl).
    Seccomp,
    /// Neither: seccomp is off and the sysctl cannot be set.
    Off,
}
