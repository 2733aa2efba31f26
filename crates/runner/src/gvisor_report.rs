//! What a gVisor launch reports (`gvisor.rs`, and the commands of a gVisor
//! session, `gvisor_session.rs`): what the bundle and runsc enforced, put
//! into the result of the native envelope around runsc; runsc's own
//! failures as the result's error; a missing command answered before
//! runsc starts.

use crate::guard::Decision;
use crate::outcome::{
    Enforced, GvisorEnforced, KilledBy, LandlockEnforced, LandlockStatus, Outcome,
};
use crate::prepare::MemfdNoexec;
use crate::{exit, Envelope, RunError};
use nucleus_gvisor::BundleSpec;
use nucleus_rootfs::Located;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a gVisor launch reports besides its exit: the bundle's view and
/// how runsc ran.
#[derive(Debug)]
pub(crate) struct View {
    /// The bundle as written.
    pub(crate) spec: BundleSpec,
    /// The report of the bundle's seccomp filter.
    pub(crate) seccomp: Option<nucleus_seccomp::SeccompReport>,
    /// The masked paths.
    pub(crate) masks: Vec<nucleus_rootfs::Mask>,
    /// The runner's state directories hidden in the bundle.
    pub(crate) hidden: Vec<PathBuf>,
    /// How runsc ran.
    pub(crate) how: GvisorEnforced,
}

impl View {
    /// Puts what gVisor enforced into the result of its native envelope,
    /// and turns runsc's own failure into the result's error.
    pub(crate) fn conclude(
        &self,
        env: &Envelope,
        outcome: &mut Outcome,
        failure: Option<nucleus_gvisor::RunscFailure>,
    ) {
        outcome.enforced = Enforced {
            gvisor: Some(self.how.clone()),
            ..enforced(
                env,
                &self.spec,
                self.seccomp.clone(),
                &outcome.enforced,
                &self.masks,
            )
        };
        outcome
            .enforced
            .masked_paths
            .extend(self.hidden.iter().cloned());
        settle(outcome, failure);
    }
}

/// runsc's exit code and log turned into the result: its own failures
/// become one-line messages with the native exit codes, and a cgroup OOM
/// kill (which takes the whole sentry) is `killed_by: memory`.
fn settle(outcome: &mut Outcome, failure: Option<nucleus_gvisor::RunscFailure>) {
    if let Some(f) = failure {
        outcome.exit_code = if f.not_found {
            exit::NOT_FOUND
        } else {
            exit::SETUP_FAILED
        };
        outcome.error = Some(format!("gvisor: {}", last_cause(&f.message)));
        return;
    }
    let oom = outcome
        .enforced
        .limits
        .as_ref()
        .is_some_and(|l| l.usage.oom_killed);
    if oom && outcome.killed_by.is_none() {
        outcome.killed_by = Some(KilledBy::Memory);
        outcome.signal = Some(libc::SIGKILL);
        outcome.exit_code = 128 + libc::SIGKILL;
    }
}

/// The innermost cause of runsc's `a: b: c` error chain, which is the one
/// that says what went wrong.
pub(crate) fn last_cause(message: &str) -> &str {
    message.rsplit(": ").next().unwrap_or(message).trim()
}

/// The command looked up on the sandbox's `PATH` in the view gVisor will
/// serve, as `execvp` would inside: a missing command fails at once with
/// native's message and code (127), one that is not executable with 126,
/// instead of runsc's chatter. `None`: found, or not decidable from the
/// host (it would be in a tmpfs); runsc then decides.
pub(crate) fn check_command(
    env: &Envelope,
    spec: &BundleSpec,
    started: Instant,
) -> Result<Option<Outcome>, RunError> {
    let path = spec
        .env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH);
    let cmd = &env.command[0];
    let refuse = |code, error: String| {
        let mut outcome = Outcome::new(
            started.elapsed(),
            enforced(
                env,
                spec,
                None,
                &Enforced::not_started(Decision::Gvisor),
                &[],
            ),
            None,
        );
        outcome.exit_code = code;
        outcome.error = Some(error);
        Ok(Some(outcome))
    };
    if let Located::Host(dir) = env.rootfs.locate(&spec.cwd) {
        if !dir.is_dir() {
            let reason = if dir.exists() {
                "not a directory"
            } else {
                "no such file or directory"
            };
            return refuse(
                exit::SETUP_FAILED,
                format!("workdir: {}: {reason}", spec.cwd.display()),
            );
        }
    }
    let candidates: Vec<PathBuf> = if cmd.contains('/') {
        vec![spec.cwd.join(cmd)]
    } else {
        path.split(':')
            .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(cmd))
            .map(|p| spec.cwd.join(p))
            .collect()
    };
    let mut denied = false;
    for inside in &candidates {
        let host = match env.rootfs.locate(inside) {
            Located::Host(host) => host,
            Located::Nothing => continue,
            Located::RunTime => return Ok(None),
        };
        match std::fs::metadata(&host) {
            Ok(meta) if meta.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o111 != 0 {
                    return Ok(None);
                }
                denied = true;
            }
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    let (code, reason) = if denied {
        (exit::CANNOT_EXECUTE, "permission denied")
    } else {
        (exit::NOT_FOUND, "command not found")
    };
    refuse(code, format!("exec: {cmd}: {reason}"))
}

/// What was enforced: the host-side envelope around runsc (`host`: its
/// namespaces, map and limits) and what the bundle gave the workload.
fn enforced(
    env: &Envelope,
    spec: &BundleSpec,
    seccomp: Option<nucleus_seccomp::SeccompReport>,
    host: &Enforced,
    masks: &[nucleus_rootfs::Mask],
) -> Enforced {
    let memfd = if seccomp.is_some() {
        MemfdNoexec::Seccomp
    } else {
        MemfdNoexec::Off
    };
    Enforced {
        // The namespaces runsc runs in; the sentry adds its own inside.
        namespaces: host.namespaces.clone(),
        userns: host.userns.clone(),
        uid_map: host.uid_map.clone(),
        gid_map: host.gid_map.clone(),
        uid: spec.uid,
        gid: spec.gid,
        capabilities: spec.capabilities.clone(),
        no_new_privs: true,
        readonly_root: spec.readonly_root,
        landlock: LandlockEnforced {
            status: LandlockStatus::ReplacedByGvisor,
            ..LandlockEnforced::off()
        },
        seccomp: seccomp.filter(|_| spec.seccomp.is_some()),
        limits: host.limits.clone(),
        rlimits: env.rlimits.effective().unwrap_or_default(),
        runtime: Decision::Gvisor,
        masked_paths: masks.iter().map(|m| m.path.clone()).collect(),
        memfd_noexec: memfd,
        userns_limits: Default::default(),
        gvisor: None,
    }
}
