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

mod action;
mod agent;
mod arch;
mod bpf;
mod compile;
mod error;
mod filter;
mod oci;
mod probe;
mod profile;
pub mod record;
mod sys;
mod syscalls;
mod variants;

pub use action::{Action, ENOSYS, EPERM};
pub use arch::Arch;
pub use bpf::{BpfInsn, SeccompData};
pub use error::SeccompError;
pub use filter::{apply_program, program_from_hex, program_to_hex, CompiledFilter, SeccompReport};
pub use oci::OciContext;
pub use probe::{probe, probe_with, SeccompProbe};
pub use profile::{ArgCond, CmpOp, Profile, Rule, UnknownSyscalls};
pub use syscalls::{name_of, number_of};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests;
