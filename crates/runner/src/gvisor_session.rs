//! Sessions under gVisor: the container a session's commands join.
//!
//! The session is held as a native one (`session.rs`) whose envelope is the
//! one a gVisor run gets (`gvisor.rs`: user, mount, PID namespaces, the
//! cgroup); its init only reaps. Once it is ready, the holder starts the
//! container in it with `runsc run --detach`: the bundle of the session's
//! Envelope, whose first process is `nucleus-gvisor-exec pause` (bound
//! read-only from beside `nucleus-run`; it reaps the commands' orphans).
//! runsc's sandbox and gofer then live on in the envelope, children of its
//! init, and end with it.
//!
//! Each command's parent joins the envelope as a native command would and
//! runs `runsc exec --user --cwd --env … nucleus-gvisor-exec run FILTER --
//! COMMAND…`. runsc 20221219 gives what it execs no seccomp filter (only a
//! container's first process gets the bundle's), so the helper installs
//! the bundle's own, compiled here, after `no_new_privs`, on itself and so
//! on the command it starts;
//! uid, gid, capabilities and rlimits are the container's, as for a
//! one-shot run. On a timeout or a client's hang-up, killing `runsc exec`
//! would leave the command running inside: the exec worker first has runsc
//! send the helper `SIGTERM` (`runsc kill --pid`, the pid from `runsc exec
//! --internal-pid-file`), and the helper kills the command's process group.

use crate::gvisor_report::View;
use crate::outcome::Outcome;
use crate::prepare::ExecPlan;
use crate::{Envelope, RunError};
use nucleus_gvisor::{BundleSpec, PreparedRun, RunscFailure};
use nucleus_rootfs::{MountKind, MountSpec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The helper's file name, beside `nucleus-run`.
const HELPER: &str = "nucleus-gvisor-exec";

/// Where the session's container sees the helper.
const HELPER_INSIDE: &str = "/.nucleus-gvisor-exec";

/// runsc's own exit code when it fails.
const RUNSC_FAILED: i32 = 128;

/// The helper, beside the running `nucleus-run`.
pub(crate) fn helper_binary() -> Result<PathBuf, RunError> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let path = exe.with_file_name(HELPER);
    match path.is_file() {
        true => Ok(path),
        false => Err(RunError::GvisorHelperMissing { path }),
    }
}

/// Makes `spec` a session's bundle: the helper bound read-only, and its
/// `pause` the container's first process.
pub(crate) fn install_helper(spec: &mut BundleSpec, helper: &Path) {
    spec.mounts.push(MountSpec {
        kind: MountKind::RoBind,
        source: Some(helper.to_owned()),
        destination: HELPER_INSIDE.into(),
        exec: false,
    });
    spec.args = vec![HELPER_INSIDE.into(), "pause".into()];
    spec.terminal = false;
}

/// A session's container: its run directory and what runs it.
#[derive(Debug)]
pub(crate) struct Container {
    run: PreparedRun,
    view: View,
    /// The bundle's seccomp filter for the helper, `-` for none.
    filter: String,
}

impl Container {
    /// `filter`: the compiled program as text, if the bundle has one.
    pub(crate) fn new(run: PreparedRun, view: View, filter: Option<String>) -> Container {
        Container {
            run,
            view,
            filter: filter.unwrap_or_else(|| "-".into()),
        }
    }

    /// `runsc run --detach`: returns once the container runs.
    pub(crate) fn start_plan(&self) -> Result<ExecPlan, RunError> {
        ExecPlan::program(&self.run.detached_argv())
    }

    /// Why the container did not start, as runsc logged it.
    pub(crate) fn start_failure(&self) -> String {
        let why = self.run.log_error();
        format!(
            "gvisor: the session's container did not start: {}",
            why.as_deref()
                .map_or("runsc failed", crate::gvisor_report::last_cause)
        )
    }

    /// Where `runsc exec` writes the pid of the command's helper, one file
    /// per exec worker.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.run
            .dir()
            .join(format!("exec-{}.pid", std::process::id()))
    }

    /// `runsc exec` of the command `env` describes (the session's Envelope
    /// with the command's own settings), through the helper.
    pub(crate) fn exec_plan(&self, env: &Envelope, pid_file: &Path) -> Result<ExecPlan, RunError> {
        let spec = &self.view.spec;
        let mut flags: Vec<OsString> = vec![
            "--user".into(),
            format!("{}:{}", spec.uid, spec.gid).into(),
            "--cwd".into(),
            env.workdir.clone().into(),
            "--internal-pid-file".into(),
            pid_file.into(),
        ];
        for (name, value) in env.environment(spec.uid) {
            flags.extend(["--env".into(), format!("{name}={value}").into()]);
        }
        let mut command: Vec<OsString> = vec![
            HELPER_INSIDE.into(),
            "run".into(),
            self.filter.clone().into(),
            "--".into(),
        ];
        command.extend(env.command.iter().map(OsString::from));
        ExecPlan::program(&self.run.exec_argv(&flags, &command))
    }

    /// `runsc kill --pid PID … TERM`: the helper `pid` kills its command.
    pub(crate) fn kill_plan(&self, pid: u32) -> Result<ExecPlan, RunError> {
        ExecPlan::program(&self.run.kill_pid_argv(pid, "TERM"))
    }

    /// A command that is missing or not executable, answered as a one-shot
    /// gVisor run answers it (127, 126), before runsc is started.
    pub(crate) fn check(
        &self,
        env: &Envelope,
        started: Instant,
    ) -> Result<Option<Outcome>, RunError> {
        let mut spec = self.view.spec.clone();
        spec.cwd.clone_from(&env.workdir);
        spec.env = env
            .environment(spec.uid)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        crate::gvisor_report::check_command(env, &spec, started)
    }

    /// The result of a command: what gVisor enforced, and runsc's own
    /// failure (its exit code 128 and its log) as the error.
    pub(crate) fn conclude(&self, env: &Envelope, outcome: &mut Outcome) {
        let failure = (outcome.exit_code == RUNSC_FAILED && outcome.signal.is_none())
            .then(|| self.run.log_error())
            .flatten()
            .map(|message| RunscFailure {
                not_found: message.contains("error finding executable"),
                message,
            });
        self.view.conclude(env, outcome, failure);
    }

    /// Removes the run directory (every runsc process is gone: the
    /// session's PID namespace ended).
    pub(crate) fn finish(self) {
        if let Err(e) = self.run.finish(0, None) {
            tracing::warn!(error = %e, "the session's run directory stays");
        }
    }
}

/// The pid `runsc exec` wrote, once it did.
pub(crate) fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
