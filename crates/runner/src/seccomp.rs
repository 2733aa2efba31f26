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
        // The default profile, and a pinned profile file, are functions of
        // these alone: compiled once per process (a launch server compiles
        // them before it forks, and every worker finds them).
        let key = self
            .memo_policy()
            .map(|policy| (policy, self.log_denied, kept_caps.clone(), extra));
        if let Some(hit) = key.as_ref().and_then(memo::get) {
            return Ok(Some(hit));
        }
        let filter = self.compile_uncached(kept_caps, extra)?;
        if let (Some(key), Some(filter)) = (key, &filter) {
            memo::put(key, filter.clone());
        }
        Ok(filter)
    }

    /// The profile's name in the memo, from the settings alone: `default`,
    /// or `sha256:PIN` for a pinned profile file. `None`: not memoized
    /// (seccomp off, a file without a pin).
    fn memo_name(&self) -> Option<String> {
        match (&self.profile_file, &self.profile_sha256) {
            (None, None) if self.mode != SeccompMode::Off => Some("default".to_owned()),
            (Some(_), Some(pin)) => {
                let pin = pin.strip_prefix("sha256:").unwrap_or(pin);
                Some(format!("sha256:{}", pin.to_ascii_lowercase()))
            }
            _ => None,
        }
    }

    /// [`Self::memo_name`], when a pinned file's content has that SHA-256
    /// now (the file is read and hashed each launch, as a one-shot run
    /// does, so a changed file fails the same way: the uncached path names
    /// the error).
    fn memo_policy(&self) -> Option<String> {
        use sha2::Digest;
        let name = self.memo_name()?;
        if let Some(path) = &self.profile_file {
            let bytes = std::fs::read(path).ok()?;
            let actual: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if name != format!("sha256:{actual}") {
                return None;
            }
        }
        Some(name)
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
    warm_variants(&SeccompSettings::default(), &[]);
}

/// For a launch server, before it forks a worker: compiles the variants of
/// its `seccomp` (a pinned file, relative to `cwd`, or the default profile)
/// with `caps` kept, unless the memo has them.
pub(crate) fn warm_for(seccomp: &SeccompSettings, caps: &[String], cwd: Option<&std::path::Path>) {
    // By name first: a profile compiled already costs the server's loop
    // no read of its file.
    let Some(name) = seccomp.memo_name() else {
        return;
    };
    if memo::contains(&(name, seccomp.log_denied, caps.to_vec(), Extra::default())) {
        return;
    }
    let mut settings = seccomp.clone();
    if let (Some(path), Some(cwd)) = (&settings.profile_file, cwd) {
        settings.profile_file = Some(cwd.join(path));
    }
    if settings.memo_policy().is_some() {
        warm_variants(&settings, caps);
    }
}

fn warm_variants(settings: &SeccompSettings, caps: &[String]) {
    for bits in 0..16u8 {
        let extra = Extra {
            no_exec: bits & 1 != 0,
            deny_memfd_exec: bits & 2 != 0,
            deny_privileged_files: bits & 4 != 0,
            deny_udp: bits & 8 != 0,
        };
        if let Err(err) = settings.compile(caps.to_vec(), extra) {
            tracing::debug!(error = %err, "cannot compile a seccomp profile ahead");
        }
    }
}

/// The compiled default-profile filters of this process, by what they
/// were compiled for; a few variants at most.
mod memo {
    use super::Extra;
    use nucleus_seccomp::CompiledFilter;
    use std::sync::Mutex;

    /// (the profile, log denied, kept capabilities, what the launch adds).
    type Key = (String, bool, Vec<String>, Extra);

    /// More variants than this are compiled each time (16 per profile and
    /// set of kept capabilities).
    const MAX: usize = 256;

    static FILTERS: Mutex<Vec<(Key, CompiledFilter)>> = Mutex::new(Vec::new());

    pub(super) fn get(key: &Key) -> Option<CompiledFilter> {
        let filters = FILTERS.lock().ok()?;
        filters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, f)| f.clone())
    }

    pub(super) fn contains(key: &Key) -> bool {
        FILTERS
            .lock()
            .is_ok_and(|filters| filters.iter().any(|(k, _)| k == key))
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
