//! Running a [`BundleSpec`] with `runsc run`, and always cleaning up.

use std::borrow::Cow;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bundle::{container_id, Workspace};
use crate::discover::Runsc;
use crate::error::GvisorError;
use crate::oci::{to_oci_config, HostView};
use crate::parse;
use crate::platform::Platform;
use crate::spec::{BundleSpec, RootSpec};
use crate::wait::{join, output_with_timeout, read_err, read_out, wait_timeout};

/// How long `runsc kill` / `runsc delete` may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit code runsc uses for its own failures.
pub(crate) const RUNSC_FAILURE: i32 = 128;

/// Where the workload's stdin, stdout and stderr go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StdioMode {
    /// The caller's own (streamed as the workload writes).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// stdin `/dev/null`; stdout and stderr collected into
    /// [`RunOutcome::output`] (also runsc's own error messages).
    Capture,
}

/// How to run: the platform and the limits of the run itself.
///
/// ```
/// use nucleus_gvisor::{Platform, RunOptions};
/// use std::time::Duration;
/// let mut opts = RunOptions::new(Platform::Ptrace);
/// opts.timeout = Some(Duration::from_secs(30));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RunOptions {
    /// The platform; must be one the `runsc` knows (see [`Runsc::choose_platform`]).
    pub platform: Platform,
    /// Wall-clock limit; on expiry the container is killed (`SIGKILL`).
    pub timeout: Option<Duration>,
    /// Where stdio goes.
    pub stdio: StdioMode,
    /// Extra global `runsc` flags (e.g. `--debug`, `--debug-log=/tmp/d/`),
    /// placed before the subcommand.
    pub extra_flags: Vec<String>,
    /// Where the per-run directory is made (default: the system temp dir).
    pub work_dir: Option<PathBuf>,
    /// After a timeout kill, how long to wait for `runsc run` to return
    /// before killing it too.
    pub kill_grace: Duration,
    /// `--ignore-cgroups`: runsc touches no cgroup (the caller put it in
    /// one of its own, or runs it where cgroups cannot be written).
    pub ignore_cgroups: bool,
    /// `--rootless`: the sandbox maps its `nobody` to the caller's id
    /// instead of to `nobody`, for a caller whose user namespace maps only
    /// its own id.
    pub rootless: bool,
}

impl RunOptions {
    /// Options for `platform`: no timeout, inherited stdio.
    pub fn new(platform: Platform) -> RunOptions {
        RunOptions {
            platform,
            timeout: None,
            stdio: StdioMode::Inherit,
            extra_flags: Vec::new(),
            work_dir: None,
            kill_grace: Duration::from_secs(5),
            ignore_cgroups: false,
            rootless: false,
        }
    }
}

/// Whether the bundle's seccomp profile was enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeccompStatus {
    /// The spec had no seccomp profile.
    NotRequested,
    /// Passed with `--oci-seccomp`: gVisor's sentry enforces it.
    Enforced,
    /// This `runsc` lacks `--oci-seccomp`, so the profile was left out of
    /// `config.json` (runsc would silently ignore it). The runner decides
    /// whether that is acceptable, ideally before running, from
    /// [`Features::oci_seccomp`](crate::Features::oci_seccomp).
    NotEnforced,
}

/// What the workload printed, with [`StdioMode::Capture`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturedOutput {
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr (and runsc's own messages).
    pub stderr: Vec<u8>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunOutcome {
    /// The workload's exit code; `128 + n` when it died of signal `n`
    /// (runsc reports both the same way).
    pub exit_code: i32,
    /// The signal, when known: the timeout's `SIGKILL`, or the signal that
    /// ended `runsc run` itself.
    pub signal: Option<i32>,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall-clock time from `runsc run` to its end.
    pub wall: Duration,
    /// The container id used.
    pub container_id: String,
    /// The platform used.
    pub platform: Platform,
    /// The cgroup path handed to runsc, if any.
    pub cgroup_path: Option<String>,
    /// Whether seccomp was enforced.
    pub seccomp: SeccompStatus,
    /// Captured stdio, with [`StdioMode::Capture`].
    #[serde(skip)]
    pub output: Option<CapturedOutput>,
}

impl Runsc {
    /// Writes the bundle for `spec` into a fresh private directory, runs it
    /// with `runsc run` in the foreground, waits (killing it at the
    /// timeout), and always deletes the container, the bundle and runsc's
    /// state root, also on errors and panics.
    ///
    /// Errors: configuration problems before anything starts; runsc's own
    /// failure ([`GvisorError::RunscFailed`], with its message);
    /// [`GvisorError::Cleanup`] (carrying the outcome) if something could
    /// not be removed.
    ///
    /// ```no_run
    /// use nucleus_gvisor::{BundleSpec, RunOptions, Runsc};
    /// let runsc = Runsc::discover(None)?;
    /// let opts = RunOptions::new(runsc.choose_platform(None)?);
    /// let outcome = runsc.run(&BundleSpec::new(["/bin/true"]), &opts)?;
    /// assert_eq!(outcome.exit_code, 0);
    /// # Ok::<(), nucleus_gvisor::GvisorError>(())
    /// ```
    pub fn run(&self, spec: &BundleSpec, opts: &RunOptions) -> Result<RunOutcome, GvisorError> {
        let plan = self.plan_for(spec, opts, container_id(), None)?;
        let parent = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut container = Container {
            runsc: self,
            ws: Workspace::create(&parent, &plan.id)?,
            id: plan.id.clone(),
            child: None,
            armed: true,
        };
        container.ws.write(&plan.config, plan.host.as_ref())?;
        let mut cmd = self.run_command(&plan, &container.ws, opts);

        let start = Instant::now();
        let child = container
            .child
            .insert(cmd.spawn().map_err(|source| GvisorError::Spawn {
                path: self.path.clone(),
                command: "run".into(),
                source,
            })?);
        let readers = (
            child.stdout.take().map(read_out),
            child.stderr.take().map(read_err),
        );
        let (status, timed_out) = container.wait(opts)?;
        let wall = start.elapsed();
        // The sandbox must be gone before the pipes can reach end-of-file.
        let stopped = container.stop();
        let output = (opts.stdio == StdioMode::Capture).then(|| collect(readers));
        let (exit_code, signal) = exit_of(status, timed_out);
        let outcome = RunOutcome {
            exit_code,
            signal,
            timed_out,
            wall,
            container_id: plan.id,
            platform: plan.platform,
            cgroup_path: plan.spec.cgroup_path.clone(),
            seccomp: plan.seccomp,
            output,
        };
        container.finish(stopped, outcome)
    }

    /// Everything decided before anything is created: the platform, the
    /// effective spec and its `config.json`.
    pub(crate) fn plan_for<'s>(
        &self,
        spec: &'s BundleSpec,
        opts: &RunOptions,
        id: String,
        empty_file: Option<PathBuf>,
    ) -> Result<Plan<'s>, GvisorError> {
        let platform = self.choose_platform(Some(opts.platform))?;
        let mut spec = Cow::Borrowed(spec);
        if opts.ignore_cgroups {
            // The caller's own cgroup limits the sandbox; runsc applies none.
            let s = spec.to_mut();
            s.cgroup_path = None;
            s.memory_limit = None;
            s.cpu_quota = None;
            s.pids_limit = None;
        } else if spec.has_limits() && spec.cgroup_path.is_none() {
            spec.to_mut().cgroup_path = Some(format!("nucleus-gvisor-{id}"));
        }
        let seccomp = match (spec.seccomp.is_some(), self.features.oci_seccomp) {
            (false, _) => SeccompStatus::NotRequested,
            (true, true) => SeccompStatus::Enforced,
            (true, false) => {
                spec.to_mut().seccomp = None;
                SeccompStatus::NotEnforced
            }
        };
        let overlay = spec.root == RootSpec::HostReadOnly && !spec.readonly_root;
        if overlay && !self.features.overlay2 {
            return Err(GvisorError::FeatureUnsupported {
                flag: "overlay2",
                needed_for: "a writable root over the host view",
                version: self.version.clone(),
            });
        }
        let mut host = (spec.root == RootSpec::HostReadOnly).then(HostView::scan);
        let mut facts = host.clone().unwrap_or_default();
        facts.empty_file = empty_file;
        if let Some(h) = host.as_mut() {
            h.empty_file.clone_from(&facts.empty_file);
        }
        let config = to_oci_config(&spec, &facts)?;
        Ok(Plan {
            id,
            platform,
            spec,
            seccomp,
            overlay,
            host,
            config,
        })
    }

    /// `runsc <global flags> <extra flags> run --bundle B ID`.
    fn run_command(&self, plan: &Plan<'_>, ws: &Workspace, opts: &RunOptions) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(self.run_args(plan, ws, opts));
        set_stdio(&mut cmd, opts.stdio);
        cmd
    }

    /// The arguments of [`Self::run_command`], without the binary.
    pub(crate) fn run_args(
        &self,
        plan: &Plan<'_>,
        ws: &Workspace,
        opts: &RunOptions,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--root".into(),
            ws.state_root.clone().into(),
            "--log".into(),
            ws.log.clone().into(),
            "--platform".into(),
            plan.platform.as_str().into(),
            "--network".into(),
            plan.spec.network.runsc_flag().into(),
        ];
        if plan.seccomp == SeccompStatus::Enforced {
            args.push("--oci-seccomp".into());
        }
        if plan.overlay {
            args.extend(["--overlay2".into(), "root:memory".into()]);
        }
        if opts.ignore_cgroups {
            args.push("--ignore-cgroups".into());
        }
        if opts.rootless {
            args.push("--rootless".into());
        }
        args.extend(opts.extra_flags.iter().map(OsString::from));
        args.extend([
            "run".into(),
            "--bundle".into(),
            ws.bundle.clone().into(),
            plan.id.clone().into(),
        ]);
        args
    }
}

/// What [`Runsc::plan_for`] decided.
pub(crate) struct Plan<'s> {
    pub(crate) id: String,
    pub(crate) platform: Platform,
    pub(crate) spec: Cow<'s, BundleSpec>,
    pub(crate) seccomp: SeccompStatus,
    pub(crate) overlay: bool,
    pub(crate) host: Option<HostView>,
    pub(crate) config: oci_spec::runtime::Spec,
}

fn set_stdio(cmd: &mut Command, mode: StdioMode) {
    match mode {
        StdioMode::Inherit => {}
        StdioMode::Null => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
        StdioMode::Capture => {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }
}

type Readers = (Option<JoinHandle<Vec<u8>>>, Option<JoinHandle<Vec<u8>>>);

fn collect((out, err): Readers) -> CapturedOutput {
    CapturedOutput {
        stdout: join(out),
        stderr: join(err),
    }
}

/// `(exit_code, signal)` from how `runsc run` ended.
fn exit_of(status: ExitStatus, timed_out: bool) -> (i32, Option<i32>) {
    if timed_out {
        return (128 + libc::SIGKILL, Some(libc::SIGKILL));
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (RUNSC_FAILURE, None),
    }
}

/// One started container and its directory. Dropping it (on an error or a
/// panic) kills and deletes the container and removes the directory.
struct Container<'a> {
    runsc: &'a Runsc,
    ws: Workspace,
    id: String,
    child: Option<Child>,
    /// Whether dropping must still clean up.
    armed: bool,
}

impl Container<'_> {
    /// Waits for `runsc run`; at the timeout kills the container, then
    /// `runsc run` itself if it does not return within the grace period.
    fn wait(&mut self, opts: &RunOptions) -> Result<(ExitStatus, bool), GvisorError> {
        let spawn_err = |source| GvisorError::Spawn {
            path: self.runsc.path.clone(),
            command: "run".into(),
            source,
        };
        let Some(child) = self.child.as_mut() else {
            return Err(spawn_err(std::io::Error::other("no runsc process")));
        };
        let Some(timeout) = opts.timeout else {
            return child.wait().map(|s| (s, false)).map_err(spawn_err);
        };
        if let Some(status) = wait_timeout(child, timeout).map_err(spawn_err)? {
            return Ok((status, false));
        }
        self.control(&["kill", "--all", &self.id, "KILL"]);
        let Some(child) = self.child.as_mut() else {
            return Err(spawn_err(std::io::Error::other("no runsc process")));
        };
        if let Some(status) = wait_timeout(child, opts.kill_grace).map_err(spawn_err)? {
            return Ok((status, true));
        }
        let _ = child.kill();
        child.wait().map(|s| (s, true)).map_err(spawn_err)
    }

    /// Runs a `runsc --root R <args>` control command; failures are left
    /// for the state-root check to notice.
    fn control(&self, args: &[&str]) {
        let mut cmd = Command::new(&self.runsc.path);
        cmd.arg("--root")
            .arg(&self.ws.state_root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let _ = output_with_timeout(cmd, CONTROL_TIMEOUT);
    }

    /// Makes sure no container is left: reaps `runsc run` (killing it if
    /// needed) and, if runsc still has state, `runsc delete --force`.
    fn stop(&mut self) -> Result<(), std::io::Error> {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                self.control(&["kill", "--all", &self.id, "KILL"]);
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if self.ws.has_state() {
            self.control(&["delete", "--force", &self.id]);
        }
        if self.ws.has_state() {
            return Err(std::io::Error::other(format!(
                "runsc delete --force {} left state behind",
                self.id
            )));
        }
        Ok(())
    }

    /// Removes the directory and turns the run into its result.
    fn finish(
        mut self,
        stopped: Result<(), std::io::Error>,
        outcome: RunOutcome,
    ) -> Result<RunOutcome, GvisorError> {
        let log = self.ws.read_log();
        let removed = self.ws.remove();
        // Everything is done here; the drop has nothing left to do.
        self.armed = false;
        let cleanup = |path, source| GvisorError::Cleanup {
            id: outcome.container_id.clone(),
            path,
            source,
            outcome: Box::new(outcome.clone()),
        };
        if let Err(source) = stopped {
            return Err(cleanup(PathBuf::from(&outcome.container_id), source));
        }
        if let Err((path, source)) = removed {
            return Err(cleanup(path, source));
        }
        if outcome.exit_code == RUNSC_FAILURE && outcome.signal.is_none() {
            if let Some(message) = parse::runsc_log_error(&log) {
                return Err(GvisorError::RunscFailed {
                    id: outcome.container_id,
                    code: RUNSC_FAILURE,
                    message,
                });
            }
        }
        Ok(outcome)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.stop();
            let _ = self.ws.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_of(ExitStatus::from_raw(7 << 8), false), (7, None));
        assert_eq!(exit_of(ExitStatus::from_raw(9), false), (137, Some(9)));
        assert_eq!(exit_of(ExitStatus::from_raw(0), true), (137, Some(9)));
    }
}
