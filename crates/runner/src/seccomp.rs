//! The seccomp settings of an Envelope and their translation into a
//! compiled filter: the default agent profile or a pinned OCI profile.

use crate::RunError;
use nucleus_seccomp::{CompiledFilter, OciContext, Profile};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which seccomp filter a sandbox gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompMode {
    /// The default agent profile (an allowlist with argument filters).
    #[default]
    Default,
    /// No filter (explicit opt-out; the result says so).
    Off,
}

/// The seccomp part of an Envelope.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SeccompSettings {
    /// Default profile or none; ignored when `profile_file` is set.
    pub mode: SeccompMode,
    /// An OCI `linux.seccomp` JSON profile used instead (`--seccomp-profile`).
    pub profile_file: Option<PathBuf>,
    /// The SHA-256 the profile file must have (`--seccomp-profile-sha256`).
    pub profile_sha256: Option<String>,
    /// Have the kernel log denials (`--seccomp-log-denied`); still enforced.
    pub log_denied: bool,
}

impl SeccompSettings {
    /// The compiled filter, or `None` when seccomp is off. `kept_caps`
    /// decides the `includes`/`excludes` of OCI profiles.
    /// `extra`: what the launch adds to the profile (see [`Extra`]: no
    /// `execve` for a wasm host, memfd, privileged files, UDP).
    pub(crate) fn compile(
        &self,
        kept_caps: Vec<String>,
        extra: Extra,
    ) -> Result<Option<CompiledFilter>, RunError> {
        // The default profile is a function of these alone: compiled once
        // per process (a launch server compiles its variants at start, and
        // every worker it forks finds them).
        let key = (self.profile_file.is_none() && self.mode != SeccompMode::Off)
            .then(|| (self.log_denied, kept_caps.clone(), extra));
        if let Some(hit) = key.as_ref().and_then(memo::get) {
            return Ok(Some(hit));
        }
        let filter = self.compile_uncached(kept_caps, extra)?;
        if let (Some(key), Some(filter)) = (key, &filter) {
            memo::put(key, filter.clone());
        }
        Ok(filter)
    }

    fn compile_uncached(
        &self,
        kept_caps: Vec<String>,
        extra: Extra,
    ) -> Result<Option<CompiledFilter>, RunError> {
        let no_exec = extra.no_exec;
        let Some(mut profile) = self.profile(kept_caps)? else {
            return Ok(None);
        };
        if extra.no_exec {
            // The wasm host: no program, and no link it cannot vouch for.
            profile = profile.deny_exec().deny_symlinks();
        }
        if extra.deny_memfd_exec {
            profile = profile.deny_exec_memfd();
        }
        if extra.deny_privileged_files {
            profile = profile.deny_privileged_files();
        }
        if extra.deny_udp {
            profile = profile.deny_udp();
        }
        let filter = profile.compile()?;
        check_init_syscalls(&filter, no_exec)?;
        Ok(Some(filter))
    }

    /// Whether a filter is installed (a profile file, or the default).
    pub(crate) fn mode_is_on(&self) -> bool {
        self.profile_file.is_some() || self.mode != SeccompMode::Off
    }

    /// The profile to enforce (the file read and checked against its pin
    /// once), or `None` when seccomp is off.
    pub(crate) fn profile(&self, kept_caps: Vec<String>) -> Result<Option<Profile>, RunError> {
        if self.mode == SeccompMode::Off && (self.profile_file.is_some() || self.log_denied) {
            return Err(RunError::SeccompConflict {
                what: "--seccomp off with --seccomp-profile or --seccomp-log-denied",
            });
        }
        let profile = match (&self.profile_file, self.mode) {
            (Some(path), _) => Profile::from_file(
                path,
                self.profile_sha256.as_deref(),
                &OciContext::native(kept_caps),
            )?,
            (None, _) if self.profile_sha256.is_some() => {
                return Err(RunError::PinWithoutFile {
                    what: "--seccomp-profile-sha256",
                });
            }
            (None, SeccompMode::Off) => return Ok(None),
            (None, SeccompMode::Default) => Profile::default_agent(),
        };
        Ok(Some(if self.log_denied {
            profile.with_log_denied()
        } else {
            profile
        }))
    }
}

/// Compiles the default profile's variants a launch without kept
/// capabilities can ask for, so that the filters are in the memo before a
/// launch server forks its workers.
pub(crate) fn warm() {
    let settings = SeccompSettings::default();
    for bits in 0..16u8 {
        let extra = Extra {
            no_exec: bits & 1 != 0,
            deny_memfd_exec: bits & 2 != 0,
            deny_privileged_files: bits & 4 != 0,
            deny_udp: bits & 8 != 0,
        };
        if let Err(err) = settings.compile(Vec::new(), extra) {
            tracing::warn!(error = %err, "cannot compile the default seccomp profile ahead");
        }
    }
}

/// The compiled default-profile filters of this process, by what they
/// were compiled for; a few variants at most.
mod memo {
    use super::Extra;
    use nucleus_seccomp::CompiledFilter;
    use std::sync::Mutex;

    type Key = (bool, Vec<String>, Extra);

    /// More variants than this are compiled each time.
    const MAX: usize = 32;

    static FILTERS: Mutex<Vec<(Key, CompiledFilter)>> = Mutex::new(Vec::new());

    pub(super) fn get(key: &Key) -> Option<CompiledFilter> {
        let filters = FILTERS.lock().ok()?;
        filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }

    pub(super) fn put(key: Key, filter: CompiledFilter) {
        if let Ok(mut filters) = FILTERS.lock() {
            if filters.len() < MAX && !filters.iter().any(|(k, _)| *k == key) {
                filters.push((key, filter));
            }
        }
    }
}

/// What a launch adds to the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Extra {
    /// The sandbox never executes a program (a wasm host): `execve` and
    /// `execveat` are denied, and so is creating symbolic links.
    pub(crate) no_exec: bool,
    /// Fileless execution is closed by seccomp
    /// ([`Profile::deny_exec_memfd`]).
    pub(crate) deny_memfd_exec: bool,
    /// Files the sandbox writes land as the invoking root's (idmapped
    /// writable binds): no setuid/setgid bit, no file capability
    /// ([`Profile::deny_privileged_files`]).
    pub(crate) deny_privileged_files: bool,
    /// Landlock limits TCP on a shared network and UDP was not allowed:
    /// UDP sockets are denied ([`Profile::deny_udp`]).
    pub(crate) deny_udp: bool,
}

/// The syscalls the sandbox's init makes after the filter is installed:
/// a profile that denies one would leave the init unable to start, reap or
/// report the workload.
pub(crate) const INIT_SYSCALLS: [&str; 11] = [
    "write",
    "wait4",
    "rt_sigtimedwait",
    "rt_sigprocmask",
    "rt_sigaction",
    "kill",
    "clone",
    "set_robust_list",
    "prctl",
    "exit_group",
    "execve",
];

/// Refuses a filter that denies what the init needs.
fn check_init_syscalls(filter: &CompiledFilter, no_exec: bool) -> Result<(), RunError> {
    use nucleus_seccomp::Action;
    let denied: Vec<&str> = INIT_SYSCALLS
        .into_iter()
        .filter(|name| !(no_exec && *name == "execve"))
        .filter(|name| {
            let Some(nr) = nucleus_seccomp::number_of(filter.arch(), name) else {
                return false;
            };
            // clone as fork(3) calls it: SIGCHLD and the tid flags, no namespaces.
            let args = if *name == "clone" {
                [0x0120_0011, 0, 0, 0, 0, 0]
            } else {
                [0; 6]
            };
            !matches!(filter.evaluate(nr, args), Some(Action::Allow | Action::Log))
        })
        .collect();
    if denied.is_empty() {
        Ok(())
    } else {
        Err(RunError::SeccompDeniesInit {
            syscalls: denied.join(", "),
        })
    }
}
