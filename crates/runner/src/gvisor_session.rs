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
//! runs `runsc exec --process FILE`: the helper's `run FILTER -- COMMAND…`
//! with the command's environment, directory and the container's user, in
//! a file of the run directory (runsc's command line is every user's to
//! read), and a log of its own. runsc 20221219 gives what it execs no
//! seccomp filter (only a container's first process gets the bundle's),
//! so the helper installs the bundle's own, compiled here, after
//! `no_new_privs`, in the command it starts; capabilities and rlimits are
//! the container's, as for a one-shot run. On a timeout or a client's
//! hang-up, killing `runsc exec` would leave the command running inside:
//! the exec worker first has runsc send the helper `SIGTERM` (`runsc kill
//! --pid`, the pid from `runsc exec --internal-pid-file`), and the helper
//! kills the command's process group.

use crate::gvisor_report::View;
use crate::outcome::Outcome;
use crate::prepare::ExecPlan;
use crate::{Envelope, RunError};
use nucleus_gvisor::{BundleSpec, PreparedRun};
use nucleus_rootfs::{MountKind, MountSpec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The helper's file name, beside `nucleus-run`.
const HELPER: &str = "nucleus-gvisor-exec";

/// Where the session's container sees the helper.
const HELPER_INSIDE: &str = "/.nucleus-gvisor-exec";

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

    /// The files of one command's `runsc exec`, named after the exec
    /// worker (the caller); left-overs of a worker that had its pid are
    /// removed first.
    pub(crate) fn exec_files(&self) -> ExecFiles {
        let name = format!("exec-{}", std::process::id());
        let files = ExecFiles {
            process: self.run.dir().join(format!("{name}.json")),
            log: self.run.dir().join(format!("{name}.log")),
            pid: self.run.dir().join(format!("{name}.pid")),
        };
        files.remove();
        files
    }

    /// `runsc exec --process FILE` of the command `env` describes (the
    /// session's Envelope with the command's own settings), through the
    /// helper. The process file (in the run directory, which only runsc's
    /// ids reach) holds the environment: runsc's command line is readable
    /// by every user of the host.
    pub(crate) fn exec_plan(
        &self,
        env: &Envelope,
        files: &ExecFiles,
    ) -> Result<ExecPlan, RunError> {
        let spec = &self.view.spec;
        let mut args: Vec<&str> = vec![HELPER_INSIDE, "run", &self.filter, "--"];
        args.extend(env.command.iter().map(String::as_str));
        let vars: Vec<String> = env
            .environment(spec.uid)
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let process = serde_json::json!({
            "args": args,
            "env": vars,
            "cwd": env.workdir,
            "user": { "uid": spec.uid, "gid": spec.gid },
            "terminal": false,
        });
        let write = std::fs::write(&files.process, process.to_string());
        write.map_err(|source| RunError::GvisorWorkspace {
            path: files.process.clone(),
            source,
        })?;
        let flags: Vec<OsString> = vec![
            "--process".into(),
            files.process.clone().into(),
            "--internal-pid-file".into(),
            files.pid.clone().into(),
        ];
        ExecPlan::program(&self.run.exec_argv(&files.log, &flags, &[]))
    }

    /// `runsc kill --pid PID … TERM`: the helper `pid` kills its command.
    pub(crate) fn kill_plan(&self, pid: u32) -> Result<ExecPlan, RunError> {
        ExecPlan::program(&self.run.kill_pid_argv(pid, "TERM"))
    }

    /// The result of a command: what gVisor enforced, and runsc's own
    /// failure (its exit code 128 and its log) as the error.
    pub(crate) fn conclude(&self, env: &Envelope, outcome: &mut Outcome, files: &ExecFiles) {
        let failure = nucleus_gvisor::failure_in_log(&files.log, outcome.exit_code, outcome.signal);
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

/// One command's `runsc exec` files in the run directory: its process
/// spec, its log and the helper's pid; removed when dropped.
pub(crate) struct ExecFiles {
    process: PathBuf,
    log: PathBuf,
    pid: PathBuf,
}

impl ExecFiles {
    /// The pid `runsc exec` wrote, once it did.
    pub(crate) fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid).ok()?.trim().parse().ok()
    }

    fn remove(&self) {
        for path in [&self.process, &self.log, &self.pid] {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        self.remove();
    }
}
