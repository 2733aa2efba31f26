//! seccomp profiles: a default agent profile, OCI JSON in and out, compile to BPF, apply.
//!
//! - [`Profile`] is the plain-data policy: a default [`Action`], [`Rule`]s with argument
//!   conditions. [`Profile::default_agent`] is the allowlist for untrusted agent code;
//!   [`Profile::from_oci_json`] / [`Profile::from_file`] read OCI (`linux.seccomp`) and
//!   Docker/podman profiles, [`Profile::to_oci_json`] writes any profile back.
//! - [`Profile::compile`] runs in the parent before clone and yields a [`CompiledFilter`];
//!   [`CompiledFilter::apply`] runs in the child as the last step before `execve`.
//! - [`record`] turns a run of a workload into the minimal allowlist that lets it run again.
//! - [`probe`] tells what the kernel supports.
//!
//! # Why not `seccompiler`'s filter builder
//!
//! `seccompiler` 0.5 gives each filter one match action and one mismatch action, has no
//! `SECCOMP_RET_USER_NOTIF` nor the `LOG`/`NEW_LISTENER` flags, keeps its syscall tables
//! private, and emits a linear chain of comparisons. A profile mixes actions per syscall
//! (podman's has allow, `EPERM`, `EINVAL` and `ENOSYS` rules), the recorder needs user
//! notification, and the filter must be cheap, so this crate assembles its own classic BPF
//! (`compile` module docs describe the layout) and keeps its own tables (x86_64, aarch64).
//!
//! # Why user notification, not ptrace, for recording
//!
//! The recorder installs a filter whose every syscall goes to a supervisor in the parent,
//! which notes the number and answers `SECCOMP_USER_NOTIF_FLAG_CONTINUE`. Compared with
//! ptrace: it sees exactly what a filter installed at the same point would see (the same
//! architecture check, the same numbers, from the same moment in the launch sequence, init
//! included); it follows every thread and child without `PTRACE_O_TRACE*` bookkeeping; it
//! needs no `CAP_SYS_PTRACE` and does not collide with a debugger or with Yama; and it leaves
//! the workload's own `ptrace` use visible rather than hidden by ours. `CONTINUE` is unsafe as
//! a security decision (the arguments can change after the check), but recording decides
//! nothing. It needs Linux 5.5.

mod agent;
mod arch;
mod bpf;
mod compile;
mod error;
mod oci;
mod probe;
mod profile;
pub mod record;
mod sys;
mod syscalls;

use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

pub use bpf::{BpfInsn, SeccompData};
pub use error::SeccompError;
pub use oci::OciContext;
pub use probe::{probe, probe_with, SeccompProbe};
pub use profile::{Action, Arch, ArgCond, CmpOp, Profile, Rule, UnknownSyscalls, ENOSYS, EPERM};
pub use syscalls::{name_of, number_of};

/// A profile compiled for one architecture: the BPF program and the filter flags.
///
/// Built in the parent by [`Profile::compile`]; applied in the child by [`CompiledFilter::apply`].
///
/// ```no_run
/// use nucleus_seccomp::Profile;
///
/// let filter = Profile::default_agent().compile()?; // parent, before clone
/// // ... child: namespaces, mounts, credentials, capabilities, Landlock, no_new_privs ...
/// filter.apply()?; // child, last step before execve
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledFilter {
    program: Vec<BpfInsn>,
    flags: libc::c_ulong,
    arch: Arch,
    audit_arch: u32,
    skipped: Vec<String>,
    report: SeccompReport,
}

/// What was enforced, for the run's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompReport {
    /// [`Profile::sha256`] of the profile compiled.
    pub profile_sha256: String,
    /// The default action, e.g. `errno(1)`.
    pub default_action: String,
    /// The number of rules in the profile.
    pub rules: usize,
    /// Unknown syscall names left out (profiles with `unknown_syscalls = skip`).
    pub skipped_syscalls: Vec<String>,
    /// Whether the kernel logs denials (`SECCOMP_FILTER_FLAG_LOG`).
    pub log_denied: bool,
    /// The architecture compiled for.
    pub arch: Arch,
    /// The program's length in instructions.
    pub instructions: usize,
}

impl CompiledFilter {
    pub(crate) fn new(
        program: Vec<BpfInsn>,
        flags: libc::c_ulong,
        arch: Arch,
        audit_arch: u32,
        skipped: Vec<String>,
        profile: &Profile,
    ) -> CompiledFilter {
        let report = SeccompReport {
            profile_sha256: profile.sha256(),
            default_action: profile.default_action.to_string(),
            rules: profile.rules.len(),
            skipped_syscalls: skipped.clone(),
            log_denied: profile.log_denied,
            arch,
            instructions: program.len(),
        };
        CompiledFilter {
            program,
            flags,
            arch,
            audit_arch,
            skipped,
            report,
        }
    }

    /// Install the filter on the calling thread (and so on everything it later starts).
    ///
    /// Runs in the child, as the last step before `execve` (after Landlock), so that nothing
    /// the runner itself still has to do is filtered, and before the init forks the workload,
    /// so that the init is covered too. Requires `no_new_privs` (set it first) or
    /// `CAP_SYS_ADMIN`. Allocates nothing: one `seccomp(2)` call on the prepared program.
    pub fn apply(&self) -> Result<(), SeccompError> {
        sys::seccomp_set_mode_filter(&self.program, self.flags)
            .map(drop)
            .map_err(|source| SeccompError::Apply { source })
    }

    /// Like [`CompiledFilter::apply`], with `SECCOMP_FILTER_FLAG_NEW_LISTENER`: returns the
    /// listener fd (close-on-exec, owned by the caller) on which a supervisor receives the
    /// `user-notify` syscalls. Used by recording, with [`Profile::record_filter`].
    pub fn apply_with_listener(&self) -> Result<RawFd, SeccompError> {
        sys::seccomp_set_mode_filter(
            &self.program,
            self.flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        )
        .map(|fd| fd as RawFd)
        .map_err(|source| SeccompError::Apply { source })
    }

    /// Unknown syscall names that were left out.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The program's length in instructions.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// The program.
    pub fn program(&self) -> &[BpfInsn] {
        &self.program
    }

    /// The `SECCOMP_FILTER_FLAG_*` flags `apply` passes.
    pub fn flags(&self) -> libc::c_ulong {
        self.flags
    }

    /// The architecture compiled for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// What this filter enforces, for the run's result.
    pub fn report(&self) -> &SeccompReport {
        &self.report
    }

    /// What the filter answers for `data` (run in an interpreter, not the kernel).
    pub fn evaluate_data(&self, data: &SeccompData) -> Option<Action> {
        bpf::run(&self.program, data, false).and_then(Action::from_ret)
    }

    /// What the filter answers for syscall `nr` of the compiled architecture with `args`.
    ///
    /// ```
    /// use nucleus_seccomp::{number_of, Action, Profile, EPERM};
    /// let filter = Profile::default_agent().compile_for(nucleus_seccomp::Arch::X86_64)?;
    /// let bpf = number_of(filter.arch(), "bpf").unwrap();
    /// assert_eq!(filter.evaluate(bpf, [0; 6]), Some(Action::Errno(EPERM)));
    /// # Ok::<(), nucleus_seccomp::SeccompError>(())
    /// ```
    pub fn evaluate(&self, nr: u32, args: [u64; 6]) -> Option<Action> {
        self.evaluate_data(&SeccompData {
            nr,
            arch: self.audit_arch,
            instruction_pointer: 0,
            args,
        })
    }

    /// Whether the kernel's action cache (Linux 5.11+) will allow syscall `nr` without running
    /// the filter at all: true when the answer is `allow` whatever the arguments, found the way
    /// the kernel finds it (the program reads nothing but the number and the architecture).
    pub fn cached_allow(&self, nr: u32) -> bool {
        let data = SeccompData {
            nr,
            arch: self.audit_arch,
            ..SeccompData::default()
        };
        bpf::run(&self.program, &data, true) == Some(libc::SECCOMP_RET_ALLOW)
    }
}

#[cfg(test)]
mod tests;
