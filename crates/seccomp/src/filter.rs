//! A compiled filter: the BPF program and its flags, ready to apply in the child, and the
//! report of what it enforces.

use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::arch::Arch;
use crate::bpf::{self, BpfInsn, SeccompData};
use crate::error::SeccompError;
use crate::profile::Profile;
use crate::sys;

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
///
/// ```
/// let filter = nucleus_seccomp::Profile::default_agent().with_log_denied().compile()?;
/// let report = filter.report();
/// assert!(report.log_denied);
/// assert_eq!(report.instructions, filter.instructions());
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
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
    /// `user-notify` syscalls. Used by recording, with [`Profile::record_filter`], and by
    /// nucleus-oci, which sends it to the agent at `linux.seccomp.listenerPath`.
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

/// A program as text, 16 hex digits per instruction (`code`, `jt`, `jf`,
/// `k`): how a filter compiled on one side travels on a command line to a
/// process that installs it with [`apply_program`] (for instance inside
/// gVisor, where a command started by `runsc exec` gets no filter of its own).
///
/// ```
/// use nucleus_seccomp::{program_from_hex, program_to_hex, Profile};
/// let filter = Profile::default_agent().compile()?;
/// let text = program_to_hex(filter.program());
/// assert_eq!(program_from_hex(&text).as_deref(), Some(filter.program()));
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
pub fn program_to_hex(program: &[BpfInsn]) -> String {
    program
        .iter()
        .map(|i| format!("{:04x}{:02x}{:02x}{:08x}", i.code, i.jt, i.jf, i.k))
        .collect()
}

/// The program [`program_to_hex`] wrote; `None` for any other text (or an
/// empty or over-long program, which the kernel would refuse).
///
/// ```
/// assert!(nucleus_seccomp::program_from_hex("zz").is_none());
/// ```
pub fn program_from_hex(text: &str) -> Option<Vec<BpfInsn>> {
    const INSN: usize = 16;
    const MAX_INSNS: usize = 4096;
    if text.is_empty() || text.len() % INSN != 0 || text.len() / INSN > MAX_INSNS {
        return None;
    }
    let field = |from: usize, len: usize| u32::from_str_radix(text.get(from..from + len)?, 16).ok();
    (0..text.len() / INSN)
        .map(|n| {
            let at = n * INSN;
            Some(BpfInsn {
                code: field(at, 4)? as u16,
                jt: field(at + 4, 2)? as u8,
                jf: field(at + 6, 2)? as u8,
                k: field(at + 8, 8)?,
            })
        })
        .collect()
}

/// Installs `program` on the calling thread with no flags, as
/// [`CompiledFilter::apply`] does a compiled one (set `no_new_privs` first).
/// Allocates nothing: safe between `fork` and `execve`.
///
/// ```no_run
/// let filter = nucleus_seccomp::Profile::default_agent().compile()?;
/// let program = nucleus_seccomp::program_from_hex(&nucleus_seccomp::program_to_hex(filter.program()));
/// // SAFETY: prctl with constant arguments.
/// unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
/// nucleus_seccomp::apply_program(&program.unwrap())?;
/// # Ok::<(), nucleus_seccomp::SeccompError>(())
/// ```
pub fn apply_program(program: &[BpfInsn]) -> Result<(), SeccompError> {
    sys::seccomp_set_mode_filter(program, 0)
        .map(drop)
        .map_err(|source| SeccompError::Apply { source })
}
